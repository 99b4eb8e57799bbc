import { describe, expect, it } from 'vitest';
import { forwardOperations, loadProtos, localOperations, OPERATION_PATHS } from '../../../src/api/index.js';
import type { IndexerApi, SelectApi } from '../../../src/api/index.js';

describe('Operations: one per unary RPC of the protos, on either thread', () => {
  const protoPaths = () => {
    const protos = loadProtos();
    return [protos.kvIndexer, protos.llmdIndexer].flatMap((s) => Object.values(s).map((m) => m.path)).sort();
  };

  it('OPERATION_PATHS, localOperations and forwardOperations name exactly the protos’ methods', () => {
    const expected = protoPaths();
    expect(expected).toHaveLength(17);
    expect([...OPERATION_PATHS].sort()).toEqual(expected);
    expect(Object.keys(localOperations({} as IndexerApi, {} as SelectApi)).sort()).toEqual(expected);
    expect(Object.keys(forwardOperations(() => Promise.resolve(Buffer.alloc(0)))).sort()).toEqual(expected);
  });

  it('forwardOperations hands each call over with its own path, request, cancellation and caller', async () => {
    const seen: unknown[] = [];
    const ops = forwardOperations((path, req, cancellation, caller) => {
      seen.push([path, req.toString(), cancellation.aborted, caller]);
      return Promise.resolve(Buffer.from('reply'));
    });
    const lookup = ops['/kvindexer.v1.KvIndexer/Lookup'] as (
      r: Buffer,
      c: { aborted: boolean },
      caller: string,
    ) => Promise<Buffer>;
    const pod = ops['/indexer.v1.IndexerService/GetPodScores'] as typeof lookup;
    expect((await lookup(Buffer.from('a'), { aborted: false }, '10.0.0.1')).toString()).toBe('reply');
    await pod(Buffer.from('b'), { aborted: true }, '10.0.0.2');
    expect(seen).toEqual([
      ['/kvindexer.v1.KvIndexer/Lookup', 'a', false, '10.0.0.1'],
      ['/indexer.v1.IndexerService/GetPodScores', 'b', true, '10.0.0.2'],
    ]);
  });
});
