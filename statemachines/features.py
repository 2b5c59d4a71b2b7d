"""Feature pipeline whose DAG is *not* series-parallel.

    users ──── user_features ───────┐
          \\                          ├── train ── evaluate
    events ─── session_features ────┘

``session_features`` needs users and events, ``user_features`` only users: the "N"
(users→user_features, users→session_features, events→session_features) that no nesting
of Parallel branches expresses exactly. docs/asl-mapping.md explains what the compiler
does with it and what it costs.
"""

from __future__ import annotations

from pydantic import BaseModel

from stepdag import Workflow

wf = Workflow("features", description="user and session features, then a tiny model")


class FeatureParams(BaseModel):
    day: str
    users: int = 50


class User(BaseModel):
    id: int
    country: str


class Event(BaseModel):
    user_id: int
    kind: str
    seconds: float


class UserFeature(BaseModel):
    user_id: int
    is_eu: bool


class SessionFeature(BaseModel):
    user_id: int
    events: int
    seconds: float


class Model(BaseModel):
    weights: dict[str, float]
    rows: int


class Evaluation(BaseModel):
    rows: int
    mean_score: float


@wf.node
def users(params: FeatureParams) -> list[User]:
    countries = ["DE", "FR", "US", "BR", "JP", "IT"]
    return [User(id=i, country=countries[i % len(countries)]) for i in range(params.users)]


@wf.node
def events(params: FeatureParams) -> list[Event]:
    kinds = ["view", "click", "buy"]
    return [
        Event(user_id=i % params.users, kind=kinds[i % 3], seconds=float((i * 7) % 31))
        for i in range(params.users * 4)
    ]


@wf.node
def user_features(users: list[User]) -> list[UserFeature]:
    return [UserFeature(user_id=u.id, is_eu=u.country in {"DE", "FR", "IT"}) for u in users]


@wf.node
def session_features(users: list[User], events: list[Event]) -> list[SessionFeature]:
    by_user: dict[int, list[Event]] = {u.id: [] for u in users}
    for e in events:
        by_user.setdefault(e.user_id, []).append(e)
    return [
        SessionFeature(user_id=uid, events=len(evs), seconds=sum(e.seconds for e in evs))
        for uid, evs in sorted(by_user.items())
    ]


@wf.node
def train(user_features: list[UserFeature], session_features: list[SessionFeature]) -> Model:
    eu = {f.user_id for f in user_features if f.is_eu}
    rows = len(session_features)
    eu_secs = sum(s.seconds for s in session_features if s.user_id in eu)
    other = sum(s.seconds for s in session_features if s.user_id not in eu)
    return Model(
        weights={"eu": round(eu_secs / max(rows, 1), 4), "other": round(other / max(rows, 1), 4)},
        rows=rows,
    )


@wf.node
def evaluate(train: Model, session_features: list[SessionFeature]) -> Evaluation:
    scores = [s.seconds * train.weights["other"] for s in session_features]
    return Evaluation(rows=len(scores), mean_score=round(sum(scores) / max(len(scores), 1), 4))
