// The hand-written Score codec (src/api/wire/) reads its field numbers and wire types from one table (fields.ts). This
// test ties that table to proto/kvindexer/v1/kvindexer.proto: for every message the table covers, it must list exactly
// the proto's fields (names, numbers, repeated, wire types). A field added to the proto and not to the table, a
// renumbered field or a changed type fails here, instead of being silently skipped or mis-encoded on the wire.
import { loadSync } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { PROTO_DIR } from '../../../src/api/proto.js';
import {
  fieldNumbers,
  fieldTags,
  oneByteTags,
  SCORE_RESPONSE,
  TOKEN_INPUT,
  WIRE_FIXED32,
  WIRE_FIXED64,
  WIRE_LEN,
  WIRE_MESSAGES,
  WIRE_START_GROUP,
  WIRE_VARINT,
  type WireMessage,
} from '../../../src/api/wire/fields.js';

/** google.protobuf.FieldDescriptorProto, as proto-loader hands its descriptors over (enums as names). */
interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}
interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
  nestedType: MessageDescriptor[];
  options: { mapEntry?: boolean } | null;
}

// keepCase: the descriptors keep the proto's snake_case names, the table's keys.
const definition = loadSync('kvindexer/v1/kvindexer.proto', { keepCase: true, includeDirs: [PROTO_DIR] });

/** The wire type of one value of a field type (protobuf encoding.md, "Message Structure"). */
const WIRE_OF_TYPE: Record<string, number> = {
  TYPE_INT32: WIRE_VARINT,
  TYPE_INT64: WIRE_VARINT,
  TYPE_UINT32: WIRE_VARINT,
  TYPE_UINT64: WIRE_VARINT,
  TYPE_SINT32: WIRE_VARINT,
  TYPE_SINT64: WIRE_VARINT,
  TYPE_BOOL: WIRE_VARINT,
  TYPE_ENUM: WIRE_VARINT,
  TYPE_FIXED64: WIRE_FIXED64,
  TYPE_SFIXED64: WIRE_FIXED64,
  TYPE_DOUBLE: WIRE_FIXED64,
  TYPE_STRING: WIRE_LEN,
  TYPE_BYTES: WIRE_LEN,
  TYPE_MESSAGE: WIRE_LEN,
  TYPE_GROUP: WIRE_START_GROUP,
  TYPE_FIXED32: WIRE_FIXED32,
  TYPE_SFIXED32: WIRE_FIXED32,
  TYPE_FLOAT: WIRE_FIXED32,
};

function messageDescriptor(name: string): MessageDescriptor {
  const entry = definition[name] as { type?: MessageDescriptor } | undefined;
  if (!entry?.type) throw new Error(`${name} is not a message of kvindexer.proto`);
  return entry.type;
}

/** The descriptor a table name stands for: a message, or `<message>.<map field>` for that map's entry message. */
function descriptorFor(tableName: string): MessageDescriptor {
  if (definition[tableName]) return messageDescriptor(tableName);
  const dot = tableName.lastIndexOf('.');
  const owner = messageDescriptor(tableName.slice(0, dot));
  const mapField = owner.field.find((f) => f.name === tableName.slice(dot + 1));
  if (!mapField) throw new Error(`${tableName}: no field ${tableName.slice(dot + 1)}`);
  const entryName = mapField.typeName.slice(mapField.typeName.lastIndexOf('.') + 1);
  const entry = owner.nestedType.find((t) => t.name === entryName);
  if (!entry?.options?.mapEntry) throw new Error(`${tableName} is not a map field`);
  return entry;
}

/** A message's fields as the table states them, from the proto descriptor. */
function fromProto(descriptor: MessageDescriptor): Record<string, { number: number; wire: number; repeated: boolean }> {
  const out: Record<string, { number: number; wire: number; repeated: boolean }> = {};
  for (const f of descriptor.field) {
    const wire = WIRE_OF_TYPE[f.type];
    if (wire === undefined) throw new Error(`${descriptor.name}.${f.name}: unknown type ${f.type}`);
    out[f.name] = { number: f.number, wire, repeated: f.label === 'LABEL_REPEATED' };
  }
  return out;
}

const tableOf = (m: WireMessage) => Object.fromEntries(Object.entries(m).map(([k, f]) => [k, { ...f }]));

describe('wire field table (src/api/wire/fields.ts) against kvindexer.proto', () => {
  it('covers the Score messages and the other requests with chat/prompt text', () => {
    expect(Object.keys(WIRE_MESSAGES).sort()).toEqual([
      'kvindexer.v1.ChatInput',
      'kvindexer.v1.ComputeBlockKeysRequest',
      'kvindexer.v1.EndpointScore',
      'kvindexer.v1.EndpointScore.blocks_by_tier',
      'kvindexer.v1.Fingerprint',
      'kvindexer.v1.ItemInfo',
      'kvindexer.v1.MultimodalItem',
      'kvindexer.v1.RenderRequest',
      'kvindexer.v1.ScoreRequest',
      'kvindexer.v1.ScoreRequest.tier_weights',
      'kvindexer.v1.ScoreResponse',
      'kvindexer.v1.SelectRequest',
      'kvindexer.v1.Speculate',
      'kvindexer.v1.TokenInput',
    ]);
  });

  for (const [name, table] of Object.entries(WIRE_MESSAGES)) {
    it(`${name}: exactly the proto's fields, numbers, repetition and wire types`, () => {
      expect(tableOf(table)).toEqual(fromProto(descriptorFor(name)));
    });
  }

  it('derives tags from the table: number × 8 + wire type, packed (LEN) for repeated scalars', () => {
    expect(fieldNumbers(TOKEN_INPUT)).toEqual({ token_ids: 1, items: 2 });
    // token_ids is repeated uint32: packed, so field 1 with LEN = 0x0a; items: field 2, LEN = 0x12.
    expect(fieldTags(TOKEN_INPUT)).toEqual({ token_ids: 0x0a, items: 0x12 });
    const tags = oneByteTags(SCORE_RESPONSE);
    expect(tags.total_blocks).toBe(0x08);
    expect(tags.scores).toBe(0x22);
    expect(tags.block_keys).toBe(0x3a); // repeated uint64, packed
    expect(tags.degraded_reason).toBe(0x4a);
    expect(tags.unknown_model).toBe(0x50);
  });

  it('refuses, at load, an encoder tag that would need more than one byte', () => {
    expect(() => oneByteTags({ wide: { number: 16, wire: WIRE_VARINT, repeated: false } })).toThrow(
      'wire table: field wide = 16 needs a tag of more than one byte',
    );
  });

  it('fails for a field the proto has and the table lacks, or a renumbered one', () => {
    const proto = fromProto(descriptorFor('kvindexer.v1.ScoreResponse'));
    const { unknown_model: _dropped, ...missing } = tableOf(SCORE_RESPONSE);
    expect(missing).not.toEqual(proto);
    const renumbered = { ...tableOf(SCORE_RESPONSE), degraded: { number: 11, wire: WIRE_VARINT, repeated: false } };
    expect(renumbered).not.toEqual(proto);
  });
});
