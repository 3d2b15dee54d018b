// A workflow's graph as an SVG picture: nodes as labelled boxes in columns by topological
// layer (a node sits one column right of its furthest predecessor), connections as arrows
// from a box's right edge to the next box's left edge. Built with createElementNS, no library.

const NS = "http://www.w3.org/2000/svg";
const BOX_W = 180;
const BOX_H = 56;
const GAP_X = 70;
const GAP_Y = 26;
const PAD = 20;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** `text` cut to `max` characters with an ellipsis. */
function cut(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * The layer of each node: 0 for a node nothing connects into, else one more than the highest
 * layer among its predecessors (Kahn's order; the API refuses cycles, but a node left over by
 * one would still get a layer after the rest).
 */
export function layers(ids, edges) {
  const incoming = new Map(ids.map((id) => [id, 0]));
  const next = new Map(ids.map((id) => [id, []]));
  for (const [from, to] of edges) {
    next.get(from).push(to);
    incoming.set(to, incoming.get(to) + 1);
  }
  const layer = new Map(ids.map((id) => [id, 0]));
  const ready = ids.filter((id) => incoming.get(id) === 0);
  const seen = new Set();
  while (ready.length) {
    const id = ready.shift();
    seen.add(id);
    for (const to of next.get(id)) {
      layer.set(to, Math.max(layer.get(to), layer.get(id) + 1));
      incoming.set(to, incoming.get(to) - 1);
      if (incoming.get(to) === 0) ready.push(to);
    }
  }
  const deepest = Math.max(0, ...layer.values());
  for (const id of ids) if (!seen.has(id)) layer.set(id, deepest + 1);
  return layer;
}

/** The SVG of `graph` (`{nodes: [{id, type, name?, disabled?}], connections?: [{from, to}]}`). */
export function drawGraph(graph) {
  const nodes = Array.isArray(graph?.nodes) ? graph.nodes : [];
  const ids = nodes.map((n) => String(n.id));
  const known = new Set(ids);
  const edges = (Array.isArray(graph?.connections) ? graph.connections : [])
    .map((c) => [String(c.from), String(c.to)])
    .filter(([from, to]) => known.has(from) && known.has(to));
  const layer = layers(ids, edges);
  // An edge that skips layers passes through a waypoint in each layer between, which takes a
  // slot in that column as a box does, so the arrow runs between boxes, never through one.
  const columns = [];
  const put = (l, entry) => (columns[l] ||= []).push(entry);
  ids.forEach((id) => put(layer.get(id), { id, preds: [] }));
  const slot = new Map(columns.flat().map((e) => [e.id, e]));
  const routes = edges.map(([from, to], i) => {
    const points = [from];
    for (let l = layer.get(from) + 1; l < layer.get(to); l++) {
      const way = { id: `~${i}~${l}`, preds: [points[points.length - 1]] };
      put(l, way);
      slot.set(way.id, way);
      points.push(way.id);
    }
    slot.get(to).preds.push(points[points.length - 1]);
    points.push(to);
    return { from, to, points };
  });
  // Within a column, entries follow the mean row of what leads into them (one left-to-right
  // sweep), which keeps most arrows short and uncrossed.
  const row = new Map();
  columns.forEach((column) => {
    if (!column) return;
    const mean = (e) => (e.preds.length ? e.preds.reduce((sum, p) => sum + (row.get(p) ?? 0), 0) / e.preds.length : Infinity);
    column.forEach((e, i) => { e.order = i; e.mean = mean(e); });
    column.sort((a, b) => (a.mean === b.mean ? a.order - b.order : a.mean - b.mean));
    column.forEach((e, i) => row.set(e.id, i));
  });
  const tallest = Math.max(1, ...columns.map((c) => (c ? c.length : 0)));
  const width = PAD * 2 + columns.length * BOX_W + Math.max(0, columns.length - 1) * GAP_X;
  const height = PAD * 2 + tallest * BOX_H + (tallest - 1) * GAP_Y;
  const at = new Map();
  columns.forEach((column, l) => {
    if (!column) return;
    // Each column is centred vertically, so a chain reads as a straight line.
    const top = PAD + ((tallest - column.length) * (BOX_H + GAP_Y)) / 2;
    column.forEach((e, r) => at.set(e.id, { x: PAD + l * (BOX_W + GAP_X), y: top + r * (BOX_H + GAP_Y) }));
  });

  const picture = svg("svg", {
    class: "graph", viewBox: `0 0 ${Math.max(width, 1)} ${Math.max(height, 1)}`,
    width, height, role: "img",
    "aria-label": `Workflow graph: ${nodes.length} nodes, ${edges.length} connections`,
  });
  picture.append(svg("defs", {}, svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse",
  }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow-head" }))));
  const lines = svg("g", { class: "edges" });
  for (const { from, to, points } of routes) {
    // From the source's right edge through each waypoint's slot to the target's left edge,
    // one smooth curve per layer crossed.
    const ends = points.map((id) => {
      const p = at.get(id);
      const y = p.y + BOX_H / 2;
      return { in: { x: p.x, y }, out: { x: p.x + BOX_W, y } };
    });
    let d = `M ${ends[0].out.x} ${ends[0].out.y}`;
    for (let i = 1; i < ends.length; i++) {
      const a = ends[i - 1].out;
      const b = ends[i].in;
      const bend = Math.max(30, (b.x - a.x) / 2);
      d += ` C ${a.x + bend} ${a.y}, ${b.x - bend} ${b.y}, ${b.x} ${b.y}`;
      if (i < ends.length - 1) d += ` L ${ends[i].out.x} ${ends[i].out.y}`;
    }
    lines.append(svg("path", { class: "edge", "marker-end": "url(#arrow)", d }, svg("title", {}, `${from} → ${to}`)));
  }
  picture.append(lines);
  const boxes = svg("g", { class: "nodes" });
  nodes.forEach((n, i) => {
    const id = ids[i];
    const { x, y } = at.get(id);
    const label = String(n.name || n.id);
    const type = String(n.type || "");
    boxes.append(svg("g", { class: n.disabled ? "node disabled" : "node", "data-node-id": id, transform: `translate(${x} ${y})` },
      svg("title", {}, `${label} (${type})${n.disabled ? ", disabled" : ""}; id ${id}`),
      svg("rect", { width: BOX_W, height: BOX_H, rx: 8, ry: 8 }),
      svg("text", { x: 12, y: 23, class: "node-label" }, cut(label, 22)),
      svg("text", { x: 12, y: 42, class: "node-type" }, cut(type + (n.disabled ? " · disabled" : ""), 26))));
  });
  picture.append(boxes);
  return picture;
}
