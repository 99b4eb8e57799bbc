import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/api/errors.js';
import { IndexerError } from '../../../src/common/index.js';
import { EndpointSpecError } from '../../../src/events/endpoint-spec.js';
import { FieldError, PayloadError } from '../../../src/events/decode/errors.js';
import { IndexUnavailableError, UnsafeEvictionPolicyError } from '../../../src/index/index.js';
import { ConfigError } from '../../../src/ops/config.js';
import { PromptError } from '../../../src/prompt/errors.js';
import { StartupError } from '../../../src/service/startup-error.js';

/** Every module's errors share one shape, {code, field, message}, which the API maps to a status in one place. */
describe('the error base', () => {
  it('gives each module error a code, a field and a message, and its own class name', () => {
    const cases: [IndexerError, string, string, string, string][] = [
      [
        new ApiError('invalid_argument', 'candidates[3]', 'not an endpoint'),
        'ApiError',
        'invalid_argument',
        'candidates[3]',
        'candidates[3]: not an endpoint',
      ],
      [
        new PromptError('not_found', 'no chat template', 'model'),
        'PromptError',
        'not_found',
        'model',
        'model: no chat template',
      ],
      [
        new PromptError('resource_exhausted', 'too many images'),
        'PromptError',
        'resource_exhausted',
        '',
        'too many images',
      ],
      [
        new IndexUnavailableError('redis index unavailable (score): ECONNREFUSED'),
        'IndexUnavailableError',
        'unavailable',
        '',
        'redis index unavailable (score): ECONNREFUSED',
      ],
      [
        new FieldError('bad_hash', 'events[0].block_hashes[1]', 'expected int or bytes, got string'),
        'FieldError',
        'invalid_argument',
        'events[0].block_hashes[1]',
        'expected int or bytes, got string',
      ],
      [
        new PayloadError('bad_batch', 'events', 'expected array'),
        'PayloadError',
        'invalid_argument',
        'events',
        'expected array',
      ],
      [
        new ConfigError('api.tlsCertFile and api.tlsKeyFile go together'),
        'ConfigError',
        'invalid_argument',
        '',
        'api.tlsCertFile and api.tlsKeyFile go together',
      ],
      [new EndpointSpecError('bad spec'), 'EndpointSpecError', 'invalid_argument', '', 'bad spec'],
      [
        new StartupError('metrics.port', '9090', 'address in use'),
        'StartupError',
        'failed_precondition',
        'metrics.port',
        'metrics.port 9090: address in use',
      ],
    ];
    for (const [err, name, code, field, message] of cases) {
      expect(err).toBeInstanceOf(IndexerError);
      expect(err).toBeInstanceOf(Error);
      expect([err.name, err.code, err.field, err.message]).toEqual([name, code, field, message]);
    }
    const unsafe = new UnsafeEvictionPolicyError('allkeys-lru');
    expect([unsafe.code, unsafe.field, unsafe.policy]).toEqual([
      'failed_precondition',
      'index.redisUrl',
      'allkeys-lru',
    ]);
    expect(unsafe.message.startsWith('maxmemory-policy allkeys-lru is unsafe:')).toBe(true);
  });

  it('keeps the cause', () => {
    const cause = new Error('ECONNRESET');
    expect(new IndexUnavailableError('down', { cause }).cause).toBe(cause);
  });
});
