import { FieldError } from './errors.js';
import { fieldPath } from './paths.js';

/** Tags longer than this are cut in messages: the tag comes from the wire and may be arbitrarily long. */
const MAX_TAG_IN_MESSAGE = 64;

/** The event types both decoders know; the batch decoder skips others without calling them. */
export const KNOWN_TAGS: ReadonlySet<string> = new Set(['BlockStored', 'BlockRemoved', 'AllBlocksCleared']);

export function unknownTagMessage(tag: string): string {
  const shown = tag.length > MAX_TAG_IN_MESSAGE ? `${tag.slice(0, MAX_TAG_IN_MESSAGE)}…` : tag;
  return `unknown event tag ${JSON.stringify(shown)}`;
}

/** Future engines add event types (e.g. `BlockInactive`): the event is skipped and counted, the batch goes on. */
export function unknownTag(tag: string, ev: number): FieldError {
  return new FieldError('unknown_tag', fieldPath(ev, 'type'), unknownTagMessage(tag));
}
