import { isIpLiteral, parseEndpointIdentity } from '../../common/index.js';

/**
 * The metrics page of an endpoint identity `<host>:<port>[@dp<r>]`: `{host}` and `{port}` of the template replaced.
 * Every data-parallel rank of one vLLM API server shares its page (the ranks are told apart by the `engine` label),
 * so `h:p` and `h:p@dp1` name one URL and it is fetched once. Null for a text that is not an identity, and for a host
 * name unless `allowHostnames`: an identity can come from any publisher's topic, and the service must not resolve and
 * GET names it was never configured with (docs/security.md; the api.allowHostnameEndpoints rule).
 */
export function metricsUrlFromTemplate(template: string, endpoint: string, allowHostnames = false): string | null {
  const id = parseEndpointIdentity(endpoint);
  if (!id.ok || (!allowHostnames && !isIpLiteral(id.value.host))) return null;
  return template.replaceAll('{host}', id.value.host).replaceAll('{port}', String(id.value.port));
}

/** `h:p@dp3` → `h:p`: the identity an AddEndpoint metrics_url was given for covers its ranks too. */
export function baseIdentity(endpoint: string): string {
  const at = endpoint.indexOf('@');
  return at < 0 ? endpoint : endpoint.slice(0, at);
}
