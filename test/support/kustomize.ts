/**
 * A small kustomize for the manifests tests: renders a kustomization directory (resources, recursively; `labels`
 * with includeSelectors; `replicas`; JSON 6902 `patches` with add/replace/remove, `-` to append) into the list of
 * objects `kubectl apply -k` would create. Only the features deploy/ uses; anything else throws, so a manifest that
 * starts using one fails the test instead of being rendered wrong.
 */

import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export type K8sObject = {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: any;
  data?: any;
  [k: string]: any;
};

const KNOWN = new Set(['apiVersion', 'kind', 'resources', 'labels', 'replicas', 'patches']);

export function render(dir: string): K8sObject[] {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Record<string, any>;
  for (const key of Object.keys(k))
    if (!KNOWN.has(key)) throw new Error(`${dir}: kustomization field ${key} is not supported by the test renderer`);
  const objects: K8sObject[] = [];
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    if (statSync(path).isDirectory()) objects.push(...render(path));
    else
      objects.push(
        ...parseAllDocuments(readFileSync(path, 'utf8'))
          .map((d) => d.toJSON() as K8sObject)
          .filter(Boolean),
      );
  }
  for (const { pairs, includeSelectors } of k.labels ?? [])
    for (const o of objects) addLabels(o, pairs, !!includeSelectors);
  for (const { name, count } of k.replicas ?? []) find(objects, 'Deployment', name).spec.replicas = count;
  for (const p of k.patches ?? []) {
    const targets = objects.filter(
      (o) => o.kind === p.target.kind && (!p.target.name || o.metadata.name === p.target.name),
    );
    if (targets.length === 0) throw new Error(`${dir}: patch target ${p.target.kind}/${p.target.name} matches nothing`);
    for (const o of targets) for (const op of parse(p.patch)) applyOp(o, op);
  }
  return objects;
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name}`);
  return o;
}

/** Where kustomize's label transformer writes (metadata, and with includeSelectors the selectors and templates). */
function addLabels(o: K8sObject, pairs: Record<string, string>, selectors: boolean): void {
  o.metadata.labels = { ...(o.metadata.labels ?? {}), ...pairs };
  if (!selectors) return;
  const merge = (holder: any, key: string) => (holder[key] = { ...(holder[key] ?? {}), ...pairs });
  if (o.kind === 'Deployment') {
    merge((o.spec.selector ??= {}), 'matchLabels');
    merge((o.spec.template.metadata ??= {}), 'labels');
  } else if (o.kind === 'Service') {
    merge(o.spec, 'selector');
  } else if (o.kind === 'PodDisruptionBudget') {
    merge((o.spec.selector ??= {}), 'matchLabels');
  } else if (o.kind === 'NetworkPolicy') {
    merge((o.spec.podSelector ??= {}), 'matchLabels');
    for (const rule of o.spec.ingress ?? [])
      for (const peer of rule.from ?? []) if (peer.podSelector?.matchLabels) merge(peer.podSelector, 'matchLabels');
  }
}

function applyOp(o: any, op: { op: string; path: string; value?: unknown }): void {
  const parts = op.path
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = parts.pop()!;
  let at = o;
  for (const p of parts) {
    if (at[p] === undefined) throw new Error(`patch path ${op.path}: ${p} does not exist`);
    at = at[p];
  }
  if (op.op === 'add' && Array.isArray(at)) {
    if (last === '-') at.push(op.value);
    else at.splice(Number(last), 0, op.value);
  } else if (op.op === 'add' || op.op === 'replace') {
    if (op.op === 'replace' && at[last] === undefined) throw new Error(`replace ${op.path}: nothing there`);
    at[last] = op.value;
  } else if (op.op === 'remove') {
    if (Array.isArray(at)) at.splice(Number(last), 1);
    else delete at[last];
  } else {
    throw new Error(`patch op ${op.op} is not supported`);
  }
}

export const renderOverlay = (root: URL, overlay: string) =>
  render(join(dirname(new URL('deploy/x', root).pathname), 'overlays', overlay));
