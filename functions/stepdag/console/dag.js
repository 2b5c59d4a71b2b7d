"use strict";
// The execution's DAG and timeline as SVG.  Nodes are laid out left to right by
// dependency level (longest path from a root), each column ordered by the mean row of
// its dependencies (one barycenter sweep: few crossings, stable between updates).

const NODE_W = 176, NODE_H = 50, COL_GAP = 64, ROW_GAP = 20, PAD = 14;

function layout(graph) {
  const names = graph.nodes.map((n) => n.name);
  const deps = Object.fromEntries(names.map((n) => [n, []]));
  for (const [from, to] of graph.edges) if (to in deps && from in deps) deps[to].push(from);
  const level = {};
  const levelOf = (name, seen) => {
    if (name in level) return level[name];
    if (seen.has(name)) return 0; // a cycle cannot be valid; do not loop on one
    seen.add(name);
    const parents = deps[name].map((d) => levelOf(d, seen));
    return (level[name] = parents.length ? Math.max(...parents) + 1 : 0);
  };
  names.forEach((n) => levelOf(n, new Set()));
  const columns = [];
  for (const n of names) (columns[level[n]] = columns[level[n]] || []).push(n);
  const row = {};
  columns.forEach((col, i) => {
    if (i > 0) {
      const mean = (n) => deps[n].reduce((s, d) => s + row[d], 0) / (deps[n].length || 1);
      col.sort((a, b) => mean(a) - mean(b));
    }
    col.forEach((n, r) => (row[n] = r));
  });
  const tallest = Math.max(1, ...columns.map((c) => c.length));
  const pos = {};
  columns.forEach((col, i) => {
    const offset = ((tallest - col.length) * (NODE_H + ROW_GAP)) / 2;
    col.forEach((n, r) => {
      pos[n] = { x: PAD + i * (NODE_W + COL_GAP), y: PAD + offset + r * (NODE_H + ROW_GAP) };
    });
  });
  const order = columns.flat();
  return {
    pos, order, deps,
    width: PAD * 2 + columns.length * NODE_W + Math.max(0, columns.length - 1) * COL_GAP,
    height: PAD * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP,
  };
}

function shorten(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// info(name) -> {status, line}: the node's state and the small line under its name.
function renderDag(graph, lay, info, selected, onSelect) {
  const root = svg("svg", {
    class: "dag", width: lay.width, height: lay.height,
    viewBox: `0 0 ${lay.width} ${lay.height}`, role: "img", "aria-label": "workflow DAG",
  });
  root.append(svg("defs", {}, svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  }, svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));
  for (const [from, to] of graph.edges) {
    const a = lay.pos[from], b = lay.pos[to];
    if (!a || !b) continue;
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x - 2, y2 = b.y + NODE_H / 2;
    const dx = Math.max(24, (x2 - x1) / 2);
    root.append(svg("path", {
      class: `edge s-${info(from).status}`, "data-edge": `${from}->${to}`,
      d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)",
    }));
  }
  for (const name of lay.order) {
    const p = lay.pos[name];
    const { status, line } = info(name);
    const g = svg("g", {
      class: `node s-${status}${name === selected ? " selected" : ""}`,
      "data-node": name, "data-status": status, transform: `translate(${p.x},${p.y})`,
      tabindex: 0, role: "button", onclick: () => onSelect(name),
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") onSelect(name); },
    },
    svg("title", {}, `${name}: ${status}`),
    svg("rect", { width: NODE_W, height: NODE_H, rx: 7 }),
    svg("text", { x: 10, y: 20, class: "name" }, shorten(name, 21)),
    svg("text", { x: 10, y: 38, class: "sub" }, shorten(line, 28)));
    root.append(g);
  }
  return root;
}

// One Gantt bar per node run (whole nodes, not Map items), on the execution's time axis.
function renderTimeline(exec, records, order, width) {
  const LABEL = 130, WIDTH = Math.max(480, width || 840), ROW = 22, TOP = 22, RIGHT = 70; // RIGHT: room for labels
  const t0 = ms(exec.started_at);
  const ends = records.map((r) => (r.ended_at ? ms(r.ended_at) : Date.now()));
  const t1 = Math.max(exec.ended_at ? ms(exec.ended_at) : Date.now(), ...ends, t0 + 1);
  const span = WIDTH - LABEL - RIGHT;
  const scale = (t) => LABEL + (span * (t - t0)) / (t1 - t0);
  const byNode = Object.fromEntries(records.map((r) => [r.node, r]));
  const rows = order;
  const height = TOP + Math.max(1, rows.length) * ROW + 6;
  const root = svg("svg", {
    class: "timeline", width: WIDTH, height, viewBox: `0 0 ${WIDTH} ${height}`,
    role: "img", "aria-label": "timeline",
  });
  for (let i = 0; i <= 4; i++) {
    const x = LABEL + (span * i) / 4;
    root.append(svg("line", { x1: x, x2: x, y1: TOP - 6, y2: height, class: "tick" }));
    root.append(svg("text", { x, y: 12, class: "tick-label", "text-anchor": i ? "middle" : "start" },
      fmtDuration(((t1 - t0) * i) / 4)));
  }
  rows.forEach((name, i) => {
    const r = byNode[name];
    const y = TOP + i * ROW;
    root.append(svg("text", { x: 4, y: y + 14, class: "name" }, shorten(name, 20)));
    if (!r || !r.started_at) {
      root.append(svg("text", { x: LABEL + 4, y: y + 14, class: "sub" }, r ? r.status.toLowerCase()
        : "pending"));
      return;
    }
    const start = ms(r.started_at);
    const end = r.ended_at ? ms(r.ended_at) : Date.now();
    const x = scale(start);
    const w = Math.max(3, scale(Math.max(end, start)) - x);
    root.append(svg("g", { class: `bar s-${r.status}`, "data-bar": name, "data-status": r.status },
      svg("title", {}, `${name}: ${r.status}, ${fmtDuration(end - start)}`),
      svg("rect", { x, y: y + 3, width: w, height: ROW - 7, rx: 3 }),
      svg("text", { x: x + w + 4, y: y + 14, class: "sub" },
        fmtDuration(end - start))));
  });
  return root;
}
