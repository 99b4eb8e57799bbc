import { describe, expect, it } from 'vitest';
import { checkEndpoint } from '../../../src/api/validate.js';
import {
  formatEndpointIdentity,
  formatHostPort,
  formatTcpAddress,
  isIpLiteral,
  parseEndpointIdentity,
  parseHostPort,
  parsePort,
  parseTcpAddress,
  rankHostPort,
  rankIdentity,
  rankPort,
} from '../../../src/common/index.js';
import { parseEventSources } from '../../../src/events/discovery-sources.js';
import { parseEndpointSpec, rankAddress, rankIdentityOf } from '../../../src/events/endpoint-spec.js';
import { parseTopic } from '../../../src/events/wire/topic.js';

/**
 * The endpoint identity is llm-d's pod identity `<ip>:<port>` taken from the topic `kv@<pod-ip>:<port>@<model>`
 * (spec/vllm-kv-events.md §1), matched as a string against the picker's candidates — so one spelling per endpoint.
 */
const PORT_MSG = (p: string) => `port "${p}" is not a port number (1-65535, no leading zero)`;

describe('parsePort', () => {
  it.each([
    ['1', 1],
    ['80', 80],
    ['65535', 65535],
  ])('accepts %s', (text, port) => expect(parsePort(text)).toBe(port));
  it.each(['0', '65536', '99999', '080', '00080', '', '-1', '+80', '8e3', ' 80', '123456'])('refuses %j', (text) => {
    expect(parsePort(text)).toBeNull();
  });
});

describe('parseHostPort / parseEndpointIdentity', () => {
  it.each([
    ['10.0.0.5:8000', '10.0.0.5', 8000, 0],
    ['pod-a.svc_1:1', 'pod-a.svc_1', 1, 0],
    ['[fd00::5]:65535', '[fd00::5]', 65535, 0],
    ['[::ffff:10.0.0.1]:80', '[::ffff:10.0.0.1]', 80, 0],
    ['10.0.0.5:8000@dp1', '10.0.0.5', 8000, 1],
    ['[fd00::5]:8000@dp63', '[fd00::5]', 8000, 63],
    ['h:1@dp99999', 'h', 1, 99999],
  ])('%s → host %s port %i rank %i', (text, host, port, rank) => {
    expect(parseEndpointIdentity(text)).toEqual({ ok: true, value: { host, port, rank } });
    expect(formatEndpointIdentity({ host, port, rank })).toBe(text);
  });

  it.each([
    ['10.0.0.5', 'syntax', '"10.0.0.5" is not <host>:<port>'],
    [':8000', 'syntax', '":8000" is not <host>:<port>'],
    ['10.0.0.5:', 'syntax', '"10.0.0.5:" is not <host>:<port>'],
    ['fd00::5:8000', 'syntax', '"fd00::5:8000" is not <host>:<port>'],
    ['[fd00::zz]:8000', 'syntax', '"[fd00::zz]:8000" is not <host>:<port>'],
    ['pod a:8000', 'syntax', '"pod a:8000" is not <host>:<port>'],
    ['pod/a:8000', 'syntax', '"pod/a:8000" is not <host>:<port>'],
    ['*:8000', 'syntax', '"*:8000" is not <host>:<port>'],
    ['h:0', 'port', PORT_MSG('0')],
    ['h:080', 'port', PORT_MSG('080')],
    ['h:65536', 'port', PORT_MSG('65536')],
    ['h:123456', 'port', PORT_MSG('123456')],
    ['h:1@dp0', 'rank', '"h:1@dp0": "@dp0" is not @dp<rank> (rank 1-99999, no leading zero; rank 0 has no suffix)'],
    ['h:1@dp01', 'rank', '"h:1@dp01": "@dp01" is not @dp<rank> (rank 1-99999, no leading zero; rank 0 has no suffix)'],
    [
      'h:1@dp100000',
      'rank',
      '"h:1@dp100000": "@dp100000" is not @dp<rank> (rank 1-99999, no leading zero; rank 0 has no suffix)',
    ],
    ['h:1@x1', 'rank', '"h:1@x1": "@x1" is not @dp<rank> (rank 1-99999, no leading zero; rank 0 has no suffix)'],
    [
      'h:1@dp1@dp2',
      'rank',
      '"h:1@dp1@dp2": "@dp1@dp2" is not @dp<rank> (rank 1-99999, no leading zero; rank 0 has no suffix)',
    ],
  ])('refuses %j (%s)', (text, problem, message) => {
    expect(parseEndpointIdentity(text)).toEqual({ ok: false, problem, message });
  });

  it('a bare <host>:<port> refuses any @ suffix', () => {
    expect(parseHostPort('h:1@dp1')).toEqual({
      ok: false,
      problem: 'syntax',
      message: '"h:1@dp1" is not <host>:<port>',
    });
    expect(parseHostPort('[fd00::5]:8000')).toEqual({ ok: true, value: { host: '[fd00::5]', port: 8000 } });
    expect(formatHostPort({ host: '[fd00::5]', port: 8000 })).toBe('[fd00::5]:8000');
  });

  it('refuses non-strings without throwing', () => {
    expect(parseEndpointIdentity(undefined as unknown as string).ok).toBe(false);
    expect(parseTcpAddress(42 as unknown as string).ok).toBe(false);
  });
});

describe('isIpLiteral (hosts an unauthenticated caller may name)', () => {
  it.each(['10.0.0.5', '0.0.0.0', '255.255.255.255', '[fd00::5]', '[::ffff:10.0.0.1]'])('%s is an IP literal', (h) =>
    expect(isIpLiteral(h)).toBe(true),
  );
  it.each(['256.0.0.1', '10.0.0', '10.0.0.05', '10.0.0.5.6', 'pod-a', 'fd00::5', 'localhost'])('%s is not', (h) =>
    expect(isIpLiteral(h)).toBe(false),
  );
});

describe('parseTcpAddress', () => {
  it.each([
    ['tcp://10.0.0.5:5557', '10.0.0.5', 5557],
    ['tcp://*:5557', '*', 5557],
    ['tcp://[fd00::5]:1', '[fd00::5]', 1],
    ['tcp://pod-a.svc:65535', 'pod-a.svc', 65535],
  ])('%s', (text, host, port) => {
    expect(parseTcpAddress(text)).toEqual({ ok: true, value: { host, port } });
    expect(formatTcpAddress({ host, port })).toBe(text);
  });
  it.each([
    ['10.0.0.5:5557', 'syntax', '"10.0.0.5:5557" is not tcp://<host>:<port>'],
    ['ipc:///tmp/x', 'syntax', '"ipc:///tmp/x" is not tcp://<host>:<port>'],
    ['tcp://10.0.0.5', 'syntax', '"tcp://10.0.0.5" is not tcp://<host>:<port>'],
    ['tcp://a/b:1', 'syntax', '"tcp://a/b:1" is not tcp://<host>:<port>'],
    ['tcp://**:1', 'syntax', '"tcp://**:1" is not tcp://<host>:<port>'],
    ['tcp://h:1@dp1', 'syntax', '"tcp://h:1@dp1" is not tcp://<host>:<port>'],
    ['tcp://*:0', 'port', PORT_MSG('0')],
    ['tcp://h:05557', 'port', PORT_MSG('05557')],
    ['tcp://h:65536', 'port', PORT_MSG('65536')],
  ])('refuses %j (%s)', (text, problem, message) => {
    expect(parseTcpAddress(text)).toEqual({ ok: false, problem, message });
  });
});

describe('rank arithmetic', () => {
  it('rank identity: rank 0 and null are the endpoint itself, r > 0 adds @dp<r>', () => {
    expect(rankIdentity('10.0.0.5:8000', null)).toBe('10.0.0.5:8000');
    expect(rankIdentity('10.0.0.5:8000', 0)).toBe('10.0.0.5:8000');
    expect(rankIdentity('10.0.0.5:8000', 1)).toBe('10.0.0.5:8000@dp1');
    expect(rankIdentity('[fd00::5]:8000', 63)).toBe('[fd00::5]:8000@dp63');
  });
  it('rank port = port + r, null past 65535', () => {
    expect(rankPort(5557, 0)).toBe(5557);
    expect(rankPort(5557, 3)).toBe(5560);
    expect(rankPort(65_472, 63)).toBe(65_535);
    expect(rankPort(65_473, 63)).toBeNull();
    expect(rankHostPort({ host: '[fd00::5]', port: 8000 }, 2)).toEqual({ host: '[fd00::5]', port: 8002 });
    expect(rankHostPort({ host: 'h', port: 65_535 }, 1)).toBeNull();
  });
});

/** The callers' rules were five regexes; these are the places where they disagreed and now follow common/. */
describe('callers follow the one rule', () => {
  it('API endpoints: port 0, 65536+ and leading zeros are refused (before: any 1-5 digits)', () => {
    expect(checkEndpoint('endpoint', '10.0.0.1:8000@dp2')).toBe('10.0.0.1:8000@dp2');
    for (const bad of ['10.0.0.1:0', '10.0.0.1:99999', '10.0.0.1:080', '10.0.0.1:8000@dp0']) {
      expect(() => checkEndpoint('endpoint', bad)).toThrow(`endpoint: "${bad}" is not <host>:<port>`);
    }
  });
  it('endpoint specs: identities, addresses and serving ports follow the port rule (before: any 1-5 digits)', () => {
    expect(() => parseEndpointSpec('tcp://h:0')).toThrow(
      'endpoint address "tcp://h:0" is not tcp://<host>:<port> or http(s)://<host>:<port>',
    );
    expect(() => parseEndpointSpec('tcp://h:1;replay=tcp://h:070000')).toThrow(
      'endpoint tcp://h:1: replay "tcp://h:070000" is not tcp://<host>:<port>',
    );
    expect(() => parseEndpointSpec('tcp://h:1;endpoint=h:080')).toThrow(
      'endpoint tcp://h:1: endpoint "h:080" is not <host>:<port>',
    );
    expect(() => parseEndpointSpec('tcp://h:1;ranks=2;serving=h:65535')).toThrow(
      'endpoint tcp://h:1: serving port + rank passes 65535',
    );
    expect(parseEndpointSpec('tcp://h:1;ranks=2;serving=h:65534').identities).toEqual({
      kind: 'serving',
      endpoint: 'h:65534',
    });
    expect(rankIdentityOf({ identities: { kind: 'serving', endpoint: '[fd00::5]:8000' } }, 3)).toBe('[fd00::5]:8003');
    expect(rankAddress('tcp://[fd00::5]:5557', 2)).toBe('tcp://[fd00::5]:5559');
    expect(() => rankAddress('tcp://h:65535', 1)).toThrow('address tcp://h:65535: port + rank 1 passes 65535');
  });
  it('topics: host names outside [A-Za-z0-9._-] are refused (before: anything but spaces, colons and brackets)', () => {
    expect(parseTopic('kv@pod*a:8000@m')).toEqual({
      ok: false,
      reason: 'topic "kv@pod*a:8000@m": endpoint "pod*a:8000" is not <host>:<port>',
    });
    expect(parseTopic('kv@10.0.0.1:080@m')).toEqual({
      ok: false,
      reason: `topic "kv@10.0.0.1:080@m": ${PORT_MSG('080')}`,
    });
  });
  it('discovery: a leading-zero port is refused; the wildcard host becomes the base URL host', () => {
    const one = (endpoint: string) => JSON.stringify([{ endpoint, topic: '' }]);
    expect(() => parseEventSources(one('tcp://*:05557'), 'http://10.0.0.9:8000', 64)).toThrow(
      'sources[0].endpoint "tcp://*:05557" is not tcp://<host>:<port 1..65535>',
    );
    expect(parseEventSources(one('tcp://*:5557'), 'http://[fd00::9]:8000', 64)).toEqual([
      { rank: 0, endpoint: 'tcp://[fd00::9]:5557', replay: null, topic: '' },
    ]);
  });
});
