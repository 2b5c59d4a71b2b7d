"use strict";
// The console's views (hash routes, so the same files work from any static host):
//   #/workflows, #/workflows/NAME, #/executions?workflow=&status=, #/executions/ID?node=N

const view = () => document.getElementById("view");
let active = null; // the shown view's cleanup (timers, event streams)

function show(title, ...children) {
  document.title = `${title} · stepdag`;
  fill(view(), ...children);
}

function problem(error) {
  const detail = error.problem && error.problem.code ? ` (${error.problem.code})` : "";
  return el("div", { class: "problem", role: "alert" }, `${error.message}${detail}`);
}

function table(head, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

// ------------------------------------------------------------------ workflows

async function showWorkflows() {
  const data = await Api.get("/v1/workflows");
  const rows = data.items.map((w) => el("tr", { "data-workflow": w.name },
    el("td", {}, el("a", { href: `#/workflows/${enc(w.name)}` }, w.name)),
    el("td", {}, w.description || ""), el("td", { class: "num" }, w.nodes),
    el("td", {}, el("a", { href: `#/executions?workflow=${enc(w.name)}` }, "executions"))));
  show("Workflows", el("h1", {}, "Workflows"),
    rows.length ? table(["name", "description", "nodes", ""], rows)
      : el("p", { class: "muted" }, "No workflows are loaded."));
}

async function showWorkflow(name) {
  const graph = await Api.get(`/v1/workflows/${enc(name)}`);
  const lay = layout(graph);
  const info = (n) => ({ status: "PENDING", line: graph.nodes.find((x) => x.name === n).returns });
  show(name, el("h1", {}, "Workflow ", el("code", {}, graph.name)),
    el("p", { class: "muted" }, graph.description || ""),
    el("p", {}, el("a", { href: `#/executions?workflow=${enc(name)}` }, "its executions")),
    el("div", { class: "card scroll" }, renderDag(graph, lay, info, null, () => {})),
    el("h2", {}, "Structure"), el("pre", {}, graph.structure));
}

// ------------------------------------------------------------------ executions

async function showExecutions(query) {
  const filter = { workflow: query.get("workflow") || "", status: query.get("status") || "",
    limit: query.get("limit") || "" };
  const tokens = [null]; // tokens[i]: the next_token that opens page i (newest first)
  let page = 0;
  const workflows = await Api.get("/v1/workflows").then((d) => d.items.map((w) => w.name),
    () => []);
  const select = (name, values, label) => el("select", {
    name, onchange: (e) => {
      const q = new URLSearchParams({ ...filter, [name]: e.target.value });
      for (const [k, v] of [...q]) if (!v) q.delete(k);
      location.hash = `#/executions?${q}`;
    },
  }, el("option", { value: "" }, label),
  values.map((v) => el("option", { value: v, selected: v === filter[name] ? "" : null }, v)));
  const body = el("div", {});
  const pager = el("div", { class: "pager" });
  show("Executions", el("h1", {}, "Executions"),
    el("div", { class: "filters" }, select("workflow", workflows, "all workflows"),
      select("status", RUN_STATUSES, "any status")), body, pager);

  async function load() {
    const data = await Api.get("/v1/executions",
      { ...filter, limit: filter.limit || "25", next_token: tokens[page] });
    tokens[page + 1] = data.next_token;
    const rows = data.items.map((x) => el("tr", { "data-execution": x.id, "data-status": x.status },
      el("td", {}, el("a", { href: `#/executions/${enc(x.id)}` }, x.name)),
      el("td", {}, x.workflow), el("td", {}, badge(x.status)),
      el("td", {}, fmtTime(x.started_at)), el("td", { class: "num" },
        duration(x.started_at, x.ended_at))));
    fill(body, rows.length ? table(["name", "workflow", "status", "started", "duration"],
      rows) : el("p", { class: "muted" }, "No executions match."));
    const go = (delta) => () => { page += delta; load().catch(fail); };
    fill(pager,
      el("button", { disabled: page === 0 ? "" : null, onclick: go(-1) }, "← newer"),
      el("span", { class: "muted" }, ` page ${page + 1} `),
      el("button", { disabled: data.next_token ? null : "", onclick: go(1) }, "older →"));
  }
  const fail = (e) => fill(body, problem(e));
  await load();
  // The first page follows new runs and status changes; older pages stay put.
  const timer = setInterval(() => { if (page === 0) load().catch(fail); }, 3000);
  return () => clearInterval(timer);
}

function itemCounts(items) {
  const counts = {};
  for (const r of items) counts[r.status] = (counts[r.status] || 0) + 1;
  return counts;
}

async function showExecution(id, query) {
  const s = { exec: await Api.get(`/v1/executions/${enc(id)}`), nodes: [],
    selected: query.get("node"), outputs: {}, live: "loading" };
  const graph = await Api.get(`/v1/workflows/${enc(s.exec.workflow)}`).catch(() => null);
  s.nodes = (await Api.get(`/v1/executions/${enc(id)}/nodes`)).nodes;
  const g = graph || { nodes: [...new Set(s.nodes.map((n) => n.node))].map((name) => ({
    name, data_deps: [] })), edges: [] };
  const lay = layout(g);
  const parts = { head: el("div", { class: "card" }), dag: el("div", { class: "card scroll" }),
    detail: el("aside", { class: "card detail" }), timeline: el("div", { class: "card scroll" }) };
  const legend = el("div", { class: "legend" }, ["PENDING", "RUNNING", "SUCCEEDED", "FAILED",
    "TIMED_OUT", "SKIPPED"].map(badge));
  show(s.exec.name, parts.head, el("div", { class: "split" }, el("section", { class: "grow" },
    parts.dag, legend, el("h2", {}, "Timeline"), parts.timeline), parts.detail));

  const whole = (name) => s.nodes.find((r) => r.node === name && r.map_index === null);
  const items = (name) => s.nodes.filter((r) => r.node === name && r.map_index !== null);
  const running = () => !TERMINAL.has(s.exec.status);
  const isMap = (r) => r.items !== null && r.items !== undefined;
  const progressOf = (name) => mapProgress(whole(name), items(name), running());
  // The status shown: a Map's own record turns terminal only after its items, so until
  // then its items say how it goes; a failed node still to be retried is RETRYING.
  const shownStatus = (name) => {
    const r = whole(name);
    if (!r) return "PENDING";
    if (isMap(r) && !NODE_DONE.has(r.status) && items(name).length) {
      const c = progressOf(name);
      if (c.running || c.retrying) return "RUNNING";
      if (c.failed) return "FAILED";
    }
    if (!isMap(r) && isRetrying(r, running(), false)) return "RETRYING";
    return r.status;
  };
  const info = (name) => {
    const r = whole(name);
    const status = shownStatus(name);
    // A Map's box says how its items went (its colour says its status).
    if (r && isMap(r)) return { status, line: progressShort(progressOf(name)) };
    const bits = [status.toLowerCase()];
    if (r && r.attempts > 1) bits.push(`${r.attempts} attempts`);
    if (r && r.cache_hit) bits.push("cached");
    return { status, line: bits.join(" · ") };
  };
  // Every failed node and item, one line each (node, item, attempt, error).
  const failures = () => s.nodes.filter((r) => isFailure(r.status)).map((r) => {
    const parent = r.map_index === null ? null : whole(r.node);
    const again = isRetrying(r, running(), Boolean(parent && NODE_DONE.has(parent.status)));
    return el("li", { "data-failure": r.map_index === null ? r.node : `${r.node}[${r.map_index}]`,
      "data-retrying": again ? "true" : null, class: again ? "retrying" : null },
    el("a", { href: `#/executions/${enc(id)}?node=${enc(r.node)}` }, r.message || r.error),
    again ? " (retrying)" : "");
  });
  // Step Functions' error says what, never where: a failed node (or item) with the same
  // one line says where (the latest such, as `cli/views.py: execution_error`).
  const executionError = (x) => {
    const what = x.message || x.error;
    const same = s.nodes.filter((r) => isFailure(r.status) && r.message
      && r.message.endsWith(`: ${what}`));
    same.sort((a, b) => ms(a.ended_at) - ms(b.ended_at));
    return same.length ? same[same.length - 1].message : what;
  };
  const fullCause = (cause) => (cause ? el("details", { class: "cause" },
    el("summary", {}, "full cause"), el("pre", {}, cause)) : null);
  const select = (name) => {
    s.selected = name;
    history.replaceState(null, "", `#/executions/${enc(id)}?node=${enc(name)}`);
    render();
  };

  function renderHead() {
    const x = s.exec;
    fill(parts.head,
      el("h1", {}, x.name, " ", el("span", { id: "exec-status", "data-status": x.status },
        badge(x.status)), " ", el("span", { id: "live", class: "muted", "data-live": s.live },
        { sse: "● live (server-sent events)", polling: "● live (polling)", done: "" }[s.live]
          || "")),
      el("dl", { class: "facts" },
        el("dt", {}, "workflow"), el("dd", {}, el("a", { href: `#/workflows/${enc(x.workflow)}` },
          x.workflow)),
        el("dt", {}, "started"), el("dd", {}, fmtTime(x.started_at)),
        el("dt", {}, "duration"), el("dd", {}, duration(x.started_at, x.ended_at)),
        el("dt", {}, "id"), el("dd", {}, el("code", {}, x.id)),
        x.redrive_count ? [el("dt", {}, "redrives"), el("dd", {}, x.redrive_count)] : null,
        x.rerun_of ? [el("dt", {}, "rerun of"), el("dd", {}, el("a", {
          href: `#/executions/${enc(x.rerun_of)}` }, x.rerun_of), ` from ${x.rerun_from}`)] : null),
      x.error ? el("div", { class: "problem", "data-error": "execution" },
        el("strong", {}, executionError(x)), fullCause(x.cause)) : null,
      (() => {
        const failed = failures();
        return failed.length ? el("div", { class: "failures" }, el("h3", {}, "failures"),
          el("ul", {}, failed.slice(0, 50))) : null;
      })(),
      el("details", {}, el("summary", {}, "execution input"), el("pre", {}, pretty(x.input))),
      x.output !== null && x.output !== undefined ? el("details", {},
        el("summary", {}, "execution output"), el("pre", {}, pretty(x.output))) : null);
  }

  // Outputs are written once, so a fetched one is kept for good; a failed fetch (a
  // restarting server, throttling) is retried: by itself up to 3 times with backoff,
  // then whenever the node is selected again.
  function output(name) {
    const had = s.outputs[name];
    if (had && !(had.error && Date.now() >= had.retryAt)) return had;
    const tries = had && had.error ? had.tries + 1 : 1;
    s.outputs[name] = { loading: true };
    Api.get(`/v1/executions/${enc(id)}/nodes/${enc(name)}/output`).then(
      (d) => { s.outputs[name] = { value: d.output }; },
      (e) => {
        const wait = 1000 * 2 ** (tries - 1);
        s.outputs[name] = { error: e.message, tries, retryAt: Date.now() + wait };
        if (tries < 3) setTimeout(renderDetail, wait);
      }).then(renderDetail);
    return s.outputs[name];
  }
  const shown = (o) => (o.loading ? "loading…" : o.error ? `(${o.error})` : pretty(o.value));

  function renderDetail() {
    const name = s.selected;
    if (!name) {
      fill(parts.detail, el("p", { class: "muted" }, "Select a node to see its "
        + "attempts, timings, input, output and error."));
      return;
    }
    const r = whole(name) || { status: "PENDING", attempt: 0, attempts: 0 };
    const spec = g.nodes.find((n) => n.name === name) || { data_deps: [] };
    const mapItems = items(name);
    const row = (k, v) => [el("dt", {}, k), el("dd", {}, v)];
    const done = (n) => (whole(n) || {}).status === "SUCCEEDED";
    const inputs = spec.data_deps.length
      ? Object.fromEntries(spec.data_deps.map((d) => [d, done(d) ? output(d) : { loading: true }]))
      : null;
    const itemStatus = (it) => (isRetrying(it, running(), NODE_DONE.has(r.status))
      ? "RETRYING" : it.status);
    fill(parts.detail,
      el("h2", { "data-detail": name }, name, " ", badge(whole(name) ? shownStatus(name) : r.status)),
      el("dl", { class: "facts" },
        row("attempts", `${r.attempts} started` + (r.attempt ? `, retry ${r.attempt}` : "")),
        row("started", fmtTime(r.started_at)), row("ended", fmtTime(r.ended_at)),
        row("duration", r.started_at ? duration(r.started_at, r.ended_at) : "—"),
        r.cache_hit ? row("cache", "hit") : null,
        r.output_bytes !== null && r.output_bytes !== undefined
          ? row("output size", `${r.output_bytes} bytes`) : null,
        r.skip_reason ? row("skipped", r.skip_reason) : null,
        isMap(r) ? row("map items", progressLine(progressOf(name))) : null),
      r.error ? el("div", { class: "problem", "data-error": name },
        el("strong", {}, r.message || r.error), fullCause(r.cause)) : null,
      el("h3", {}, inputs ? "input (upstream outputs)" : "input (execution params)"),
      el("pre", {}, inputs ? Object.entries(inputs).map(([d, o]) => `${d}: ${shown(o)}\n`)
        : pretty(s.exec.input)),
      el("h3", {}, "output"),
      el("pre", { "data-output": name }, r.status === "SUCCEEDED" ? shown(output(name))
        : `(none: ${r.status.toLowerCase()})`),
      mapItems.length ? [el("h3", {}, "map items"), table(["#", "status", "attempts", "error"],
        // Failed items first: the ones a reader looks for among thousands.
        [...mapItems].sort((a, b) => isFailure(b.status) - isFailure(a.status)
          || a.map_index - b.map_index).slice(0, 100).map((it) => el("tr", {
          "data-item": it.map_index, "data-status": itemStatus(it) },
        el("td", {}, it.map_index), el("td", {}, badge(itemStatus(it))),
        el("td", { class: "num" }, it.attempts), el("td", {}, it.message || it.error || ""))))]
        : null);
  }

  // Fits the card's width (its padding aside), so the axis never hides under a scrollbar.
  const timeline = () => renderTimeline(s.exec, s.nodes.filter((r) => r.map_index === null),
    lay.order, parts.timeline.clientWidth - 30);

  function render() {
    renderHead();
    fill(parts.dag, renderDag(g, lay, info, s.selected, select));
    renderDetail();
    fill(parts.timeline, timeline());
  }

  // ---- live updates: server-sent events where the server streams, else polling.
  let stream = null, timer = null, ticker = null;
  const apply = (exec, nodes) => {
    s.exec = exec;
    s.nodes = nodes;
    if (TERMINAL.has(exec.status)) finish();
    render();
  };
  const finish = () => {
    s.live = "done";
    if (stream) stream.close();
    clearInterval(timer);
    clearInterval(ticker);
  };
  const poll = () => {
    s.live = "polling";
    timer = setInterval(async () => {
      try {
        const exec = await Api.get(`/v1/executions/${enc(id)}`);
        apply(exec, (await Api.get(`/v1/executions/${enc(id)}/nodes`)).nodes);
      } catch (e) { parts.head.append(problem(e)); }
    }, 1000);
  };
  if (TERMINAL.has(s.exec.status)) {
    s.live = "done";
  } else if (Api.events && window.EventSource && !Api.auth) {
    // EventSource cannot send an Authorization header: with a token, poll.
    let heard = false;
    s.live = "sse";
    stream = new EventSource(Api.url(`/v1/executions/${enc(id)}/events`));
    const onSnapshot = (e) => { heard = true; const d = JSON.parse(e.data); apply(d.execution, d.nodes); };
    stream.addEventListener("snapshot", onSnapshot);
    stream.addEventListener("end", onSnapshot);
    stream.addEventListener("problem", (e) => {
      stream.close();
      parts.head.append(problem(new ApiError(0, JSON.parse(e.data))));
    });
    stream.onerror = () => {
      // No stream here at all (not stepdag serve): poll the REST routes instead.  After a
      // first event, EventSource reconnects by itself.
      if (!heard) { stream.close(); stream = null; poll(); render(); }
    };
  } else {
    poll();
  }
  if (!TERMINAL.has(s.exec.status)) {
    // Running bars and durations grow between events.
    ticker = setInterval(() => { renderHead(); fill(parts.timeline, timeline()); }, 1000);
  }
  render();
  return finish;
}

// ------------------------------------------------------------------ routing

let routed = 0;

async function route() {
  if (active) active();
  active = null;
  const mine = ++routed;
  const [path, qs] = location.hash.replace(/^#/, "").split("?");
  const query = new URLSearchParams(qs || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("current", a.dataset.nav === (parts[0] || "workflows"));
  }
  try {
    let stop = null;
    if (parts[0] === "executions" && parts[1]) stop = await showExecution(parts[1], query);
    else if (parts[0] === "executions") stop = await showExecutions(query);
    else if (parts[0] === "workflows" && parts[1]) await showWorkflow(parts[1]);
    else await showWorkflows();
    // Navigated away while this view was loading: stop it at once.
    if (mine === routed) active = stop; else if (stop) stop();
  } catch (e) {
    if (mine === routed) show("error", problem(e));
  }
}

async function start() {
  await Api.configure();
  document.getElementById("api-base").textContent = Api.base || "";
  if (Api.auth === "token") {
    const box = document.getElementById("token-box");
    const input = document.getElementById("token");
    box.hidden = false;
    input.value = sessionStorage.getItem("stepdag.token") || "";
    input.addEventListener("change", () => { sessionStorage.setItem("stepdag.token", input.value); route(); });
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
