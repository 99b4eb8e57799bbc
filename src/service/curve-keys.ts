import { readFileSync } from 'node:fs';
import type { CurveClientKeys } from '../events/index.js';
import { ConfigError, type Config } from '../ops/index.js';

/** Z85 text of a 32-byte CURVE key: 40 characters of the Z85 alphabet. */
const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

/**
 * The CURVE client keys of the connect-mode sockets, read from the files named by zmq.curveServerPublicKeyFile,
 * zmq.curvePublicKeyFile and zmq.curveSecretKeyFile (all three or none; mounted Secrets, Z85 text, surrounding
 * whitespace ignored). Read at start so that a bad file fails the start; errors name the file, never its content.
 */
export function readCurveClientKeys(zmq: Config['zmq']): CurveClientKeys | null {
  const files = {
    curveServerPublicKeyFile: zmq.curveServerPublicKeyFile,
    curvePublicKeyFile: zmq.curvePublicKeyFile,
    curveSecretKeyFile: zmq.curveSecretKeyFile,
  };
  const given = Object.values(files).filter(Boolean).length;
  if (given === 0) return null;
  if (given !== 3)
    throw new ConfigError(
      'zmq.curveServerPublicKeyFile, zmq.curvePublicKeyFile and zmq.curveSecretKeyFile go together',
    );
  const read = (key: keyof typeof files): string => {
    const path = files[key];
    let text: string;
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`zmq.${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    if (!Z85_KEY.test(text)) throw new ConfigError(`zmq.${key}: ${path} does not hold a Z85 CURVE key (40 characters)`);
    return text;
  };
  const keys = {
    serverPublicKey: read('curveServerPublicKeyFile'),
    publicKey: read('curvePublicKeyFile'),
    secretKey: read('curveSecretKeyFile'),
  };
  if (keys.secretKey === keys.publicKey || keys.secretKey === keys.serverPublicKey) {
    throw new ConfigError(
      'zmq.curveSecretKeyFile holds a public key: it must hold the secret key of the zmq.curvePublicKeyFile pair',
    );
  }
  return keys;
}
