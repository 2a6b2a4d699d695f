// A run's steps as a graph: dagre computes the layout (ranks left to right), this draws it as SVG.
// Each node is a link to its step (keyboard-reachable: SVG links take focus like any link).
import dagre from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';
import { html } from '../html.js';
import { stepPath } from '../format.js';

const NODE_W = 168;
const NODE_H = 44;

function layout(steps) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 14, ranksep: 44, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const s of steps) g.setNode(s.name, { width: NODE_W, height: NODE_H });
  for (const s of steps) for (const d of s.dependsOn ?? []) if (g.hasNode(d)) g.setEdge(d, s.name);
  dagre.layout(g);
  const graph = g.graph();
  return {
    width: Math.ceil(graph.width ?? NODE_W),
    height: Math.ceil(graph.height ?? NODE_H),
    nodes: g.nodes().map((n) => ({ name: n, ...g.node(n) })),
    edges: g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points ?? [] })),
  };
}

function truncate(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function Dag({ runId, steps }) {
  // Re-laid out only when the set of steps or their edges change, not on every status change.
  const shapeKey = steps.map((s) => `${s.name}<${(s.dependsOn ?? []).join(',')}`).join('|');
  const g = useMemo(() => layout(steps), [shapeKey]);
  const byName = new Map(steps.map((s) => [s.name, s]));
  return html`<div class="dag-wrap">
    <svg class="dag" role="img" aria-label=${`Graph of ${steps.length} steps`} width=${g.width} height=${g.height} viewBox=${`0 0 ${g.width} ${g.height}`}>
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" /></marker></defs>
      ${g.edges.map((e) => html`<polyline key=${e.from + '>' + e.to} class="edge" points=${e.points.map((p) => `${p.x},${p.y}`).join(' ')} marker-end="url(#arrow)" />`)}
      ${g.nodes.map((n) => {
        const s = byName.get(n.name);
        const status = s?.status ?? 'pending';
        return html`<a key=${n.name} href=${stepPath(runId, n.name)} class=${`node s-${status}`} data-step=${n.name} data-status=${status} aria-label=${`${n.name}: ${status}`}>
          <rect x=${n.x - NODE_W / 2} y=${n.y - NODE_H / 2} width=${NODE_W} height=${NODE_H} rx="6" />
          <text x=${n.x} y=${n.y - 4} text-anchor="middle" class="node-name">${truncate(n.name, 22)}</text>
          <text x=${n.x} y=${n.y + 13} text-anchor="middle" class="node-sub">${s?.tool ?? ''} · ${status.replace('_', ' ')}${s && s.attempts > 1 ? ` · ${s.attempts} attempts` : ''}</text>
          <title>${n.name} (${s?.tool}): ${status}</title>
        </a>`;
      })}
    </svg>
  </div>`;
}
