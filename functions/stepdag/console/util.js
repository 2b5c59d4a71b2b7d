"use strict";
// Helpers shared by the console's views: DOM building, formatting, the API client.
//
// The DOM is built with createElement/textContent/setAttribute only, never innerHTML:
// everything that comes from the API (node names, errors, outputs) lands as text, so an
// error message like "<img onerror=...>" is shown, not run.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") node.addEventListener(key.replace(/^on/, ""), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const el = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);
// replaceChildren with el()'s rules (skip null/false, flatten arrays, text for strings).
const fill = (node, ...children) => { node.replaceChildren(); return build(node, {}, children); };

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]);
const RUN_STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"];

const NODE_DONE = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "SKIPPED"]);
// FAILED, or any other end that is neither a success nor a skip (a time-out).
const isFailure = (status) => NODE_DONE.has(status) && status !== "SUCCEEDED" && status !== "SKIPPED";

// A FAILED record while its run (and its Map) still goes on is waiting for its retry:
// the rule of core/failures.py, which the API's `message` fields also come from.
function isRetrying(rec, running, parentDone) {
  return isFailure(rec.status) && running && !parentDone;
}

// A Map's item counts: done / running / retrying / failed (/ skipped) of its total.
function mapProgress(whole, items, running) {
  const c = { total: whole.items, done: 0, running: 0, retrying: 0, failed: 0, skipped: 0 };
  const parentDone = NODE_DONE.has(whole.status);
  for (const it of items) {
    if (it.status === "SUCCEEDED") c.done += 1;
    else if (it.status === "RUNNING") c.running += 1;
    else if (it.status === "SKIPPED") c.skipped += 1;
    else if (isFailure(it.status)) c[isRetrying(it, running, parentDone) ? "retrying" : "failed"] += 1;
  }
  return c;
}

// The DAG box's short form (it has room for ~28 characters): "3/8, 2 run, 1 retry, 1 fail".
function progressShort(c) {
  const total = c.total === null || c.total === undefined ? "?" : c.total;
  const more = [["running", "run"], ["retrying", "retry"], ["failed", "fail"], ["skipped", "skip"]]
    .filter(([k]) => c[k]).map(([k, short]) => `${c[k]} ${short}`);
  return more.length ? [`${c.done}/${total}`].concat(more).join(", ") : `${c.done}/${total} items`;
}

function progressLine(c) {
  const total = c.total === null || c.total === undefined ? "?" : c.total;
  return [`${c.done}/${total} items`].concat(["running", "retrying", "failed", "skipped"]
    .filter((k) => c[k]).map((k) => `${c[k]} ${k}`)).join(" · ");
}

function ms(iso) { return iso ? Date.parse(iso) : NaN; }

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}

function fmtDuration(millis) {
  if (!Number.isFinite(millis) || millis < 0) return "—";
  if (millis < 1000) return `${Math.round(millis)} ms`;
  const s = millis / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

function duration(start, end) {
  const a = ms(start);
  const b = end ? ms(end) : Date.now();
  return fmtDuration(b - a);
}

function pretty(value) {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

function badge(status) {
  return el("span", { class: `badge s-${status}`, "data-status": status }, status);
}

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// config.json beside index.html: {"api": base URL ('' = this origin), "events": bool,
// "auth": "token"?}.  stepdag serve answers it itself; `stepdag console export` writes it.
const Api = {
  base: "",
  events: false,
  auth: null,

  async configure() {
    try {
      const answer = await fetch("config.json", { cache: "no-store" });
      if (answer.ok) {
        const cfg = await answer.json();
        this.base = String(cfg.api || "").replace(/\/+$/, "");
        this.events = Boolean(cfg.events);
        this.auth = cfg.auth || null;
      }
    } catch (_) { /* no config: the API is this origin, no events */ }
  },

  url(path, query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query || {})) if (v) params.set(k, v);
    const qs = params.toString();
    return this.base + path + (qs ? `?${qs}` : "");
  },

  headers() {
    // Sent as is, as API Gateway's Cognito authorizer wants the ID token (no "Bearer ").
    const token = this.auth === "token" ? sessionStorage.getItem("stepdag.token") : null;
    return token ? { Authorization: token } : {};
  },

  async get(path, query) {
    const answer = await fetch(this.url(path, query), { headers: this.headers() });
    const body = await answer.json().catch(() => null);
    if (!answer.ok) throw new ApiError(answer.status, body);
    return body;
  },
};

const enc = encodeURIComponent;
