// A run's steps as a graph: dagre computes the layout (ranks left to right), this draws it as SVG.
// Each node is a link to its step (keyboard-reachable: SVG links take focus like any link). Steps a
// tool added at runtime grow the graph as their step.added events arrive: they are drawn with a
// dashed outline, and a dashed edge from the step that added them when they do not depend on it.
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
  for (const s of steps) for (const d of s.dependsOn ?? []) if (g.hasNode(d)) g.setEdge(d, s.name, { kind: 'dep' });
  for (const s of steps) {
    if (s.addedBy && g.hasNode(s.addedBy) && !g.hasEdge(s.addedBy, s.name)) g.setEdge(s.addedBy, s.name, { kind: 'added' });
  }
  dagre.layout(g);
  const graph = g.graph();
  return {
    width: Math.ceil(graph.width ?? NODE_W),
    height: Math.ceil(graph.height ?? NODE_H),
    nodes: g.nodes().map((n) => ({ name: n, ...g.node(n) })),
    edges: g.edges().map((e) => ({ from: e.v, to: e.w, kind: g.edge(e).kind, points: g.edge(e).points ?? [] })),
  };
}

function truncate(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function Dag({ runId, steps }) {
  // Re-laid out only when the set of steps or their edges change, not on every status change.
  const shapeKey = steps.map((s) => `${s.name}<${(s.dependsOn ?? []).join(',')}+${s.addedBy ?? ''}`).join('|');
  const g = useMemo(() => layout(steps), [shapeKey]);
  const byName = new Map(steps.map((s) => [s.name, s]));
  return html`<div class="dag-wrap">
    <svg class="dag" role="img" aria-label=${`Graph of ${steps.length} steps`} width=${g.width} height=${g.height} viewBox=${`0 0 ${g.width} ${g.height}`}>
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" /></marker></defs>
      ${g.edges.map((e) => html`<polyline key=${e.from + '>' + e.to} class=${e.kind === 'added' ? 'edge edge-added' : 'edge'} data-from=${e.from} data-to=${e.to} points=${e.points.map((p) => `${p.x},${p.y}`).join(' ')} marker-end="url(#arrow)" />`)}
      ${g.nodes.map((n) => {
        const s = byName.get(n.name);
        const status = s?.status ?? 'pending';
        const waits = status === 'pending' && s?.outputsFrom ? ` · waits for ${s.outputsFrom}` : '';
        const added = s?.addedBy ? `, added by ${s.addedBy}` : '';
        return html`<a key=${n.name} href=${stepPath(runId, n.name)} class=${`node s-${status}${s?.addedBy ? ' added' : ''}`} data-step=${n.name} data-status=${status} data-added-by=${s?.addedBy ?? undefined} aria-label=${`${n.name}: ${status}${added}`}>
          <rect x=${n.x - NODE_W / 2} y=${n.y - NODE_H / 2} width=${NODE_W} height=${NODE_H} rx="6" />
          <text x=${n.x} y=${n.y - 4} text-anchor="middle" class="node-name">${truncate(n.name, 22)}</text>
          <text x=${n.x} y=${n.y + 13} text-anchor="middle" class="node-sub">${truncate(`${s?.tool ?? ''} · ${status.replace('_', ' ')}${s && s.attempts > 1 ? ` · ${s.attempts} attempts` : ''}${waits}`, 30)}</text>
          <title>${n.name} (${s?.tool}): ${status}${waits}${added}</title>
        </a>`;
      })}
    </svg>
    ${steps.some((s) => s.addedBy) && html`<p class="dag-legend muted">Dashed: steps added at runtime; a dashed arrow comes from the step that added one.</p>`}
  </div>`;
}
