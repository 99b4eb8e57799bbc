import { FieldError } from './errors.js';
import { fieldPath } from './paths.js';

/** Tags longer than this are cut in messages: the tag comes from the wire and may be arbitrarily long. */
const MAX_TAG_IN_MESSAGE = 64;

/** Future engines add event types (e.g. `BlockInactive`): the event is skipped and counted, the batch goes on. */
export function unknownTag(tag: string, ev: number): FieldError {
  const shown = tag.length > MAX_TAG_IN_MESSAGE ? `${tag.slice(0, MAX_TAG_IN_MESSAGE)}…` : tag;
  return new FieldError('unknown_tag', fieldPath(ev, 'type'), `unknown event tag ${JSON.stringify(shown)}`);
}
