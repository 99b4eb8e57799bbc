#!/usr/bin/env python3
"""Independent reference for vLLM's image identifier byte streams (../shared/spec/vllm-mm-hash.md §3-4).

Written from the spec's tables, not from the TypeScript code: it builds each version's stream with Python's own
json.loads (ints vs floats, key order), struct and hashlib, and prints the stream's sha256 and sha512 digests.
test/unit/prompt/vllm-mm-hash.test.ts checks the service against the committed output (mm-hash-vectors.json);
BLAKE3 digests are checked there with @noble/hashes, a second implementation, over the same stream.

  python3 test/support/vllm_mm_hash_ref.py > test/unit/prompt/mm-hash-vectors.json
"""
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
IMAGES = os.path.join(ROOT, 'fixtures', 'images')
GOLDEN_IMAGE = os.path.join(ROOT, '..', 'shared', 'golden', 'images', 'coco-000000039769.png')


def item_bytes(key, value, none_pickle):
    """iter_item_to_bytes for JSON-typed values (spec §3)."""
    k = key.encode()
    if isinstance(value, bool):
        yield k; yield bytes([1 if value else 0])
    elif isinstance(value, int):
        yield k; yield struct.pack('<q', value)
    elif isinstance(value, float):
        yield k; yield struct.pack('<d', value)
    elif isinstance(value, str):
        yield k; yield value.encode()
    elif isinstance(value, bytes):
        yield k; yield value
    elif value is None:
        yield k
        if none_pickle:
            yield b'\x80\x04\x4e\x2e'
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from item_bytes(f'{key}.{i}', v, none_pickle)
    elif isinstance(value, dict):
        for kk, v in value.items():
            yield from item_bytes(f'{key}.{kk}', v, none_pickle)
    else:
        raise TypeError(value)


class Media:
    """MediaWithBytes: key, then the bytes under the key again; with io_config a dict {io_config, data}."""
    def __init__(self, data, io_config=None):
        self.data, self.io_config = data, io_config


def top(key, value, none_pickle):
    if isinstance(value, Media):
        yield key.encode()
        if value.io_config is None:
            yield from item_bytes(key, value.data, none_pickle)
        else:
            yield from item_bytes(key, {'io_config': value.io_config, 'data': value.data}, none_pickle)
    else:
        yield from item_bytes(key, value, none_pickle)


def stream(version, model, image, kwargs_json, max_model_len=None, max_tokens=None):
    kwargs = json.loads(kwargs_json) if kwargs_json else {}
    if version < (0, 16):
        d = {'model_id': model, 'image': image, **kwargs, 'truncation': False}
        items = list(d.items())
    else:
        d = {'model_id': model, 'image': image, **kwargs}
        if version < (0, 17):
            d.update({'add_special_tokens': False, 'max_length': max_model_len - (max_tokens or 0) + 1, 'truncation': True})
        items = sorted(d.items())
    none_pickle = version < (0, 14)
    return b''.join(c for k, v in items for c in top(k, v, none_pickle))


def read(path):
    with open(path, 'rb') as f:
        return f.read()


MODEL = 'Qwen/Qwen2-VL-2B-Instruct'
KW = '{"max_pixels": 1003520, "min_pixels": 3136, "scale": 2.0, "10": 1, "2": {"b": null, "a": [true, 1.5e3, "é"]}}'
RGB_IO = {'image_mode': 'RGB', 'rgba_background_color': [255, 255, 255]}

cases = []


def case(name, version, image_file, kwargs_json='', uuid=None, io=False, max_model_len=None, max_tokens=None, model=MODEL):
    data = read(image_file)
    image = uuid if uuid is not None else Media(data, RGB_IO if io else None)
    s = stream(version, model, image, kwargs_json, max_model_len, max_tokens)
    cases.append({
        'name': name, 'version': '.'.join(map(str, version)), 'model': model,
        'image': os.path.relpath(image_file, ROOT), 'kwargs': kwargs_json, 'uuid': uuid,
        'maxModelLen': max_model_len, 'maxTokens': max_tokens, 'ioConfig': io,
        'streamBytes': len(s),
        'sha256': hashlib.sha256(s).hexdigest(), 'sha512': hashlib.sha512(s).hexdigest(),
    })


COCO = GOLDEN_IMAGE
GREY = os.path.join(IMAGES, 'grey-640x480.png')
JPG = os.path.join(IMAGES, 'grey-1024x768.jpg')
WEBP_L = os.path.join(IMAGES, 'solid-100x100.webp')
WEBP_X = os.path.join(IMAGES, 'solid-300x200-vp8x.webp')
GIF = os.path.join(IMAGES, 'dots-64x48.gif')

case('golden image, 0.19.1, no kwargs', (0, 19, 1), COCO)
case('golden image, 0.19.1, kwargs (float, nested, null, integer-like keys)', (0, 19, 1), COCO, KW)
case('grey PNG (colour type 0), 0.17.0', (0, 17, 0), GREY)
case('JPEG, 0.20.0, kwargs', (0, 20, 0), JPG, '{"max_pixels": 1003520}')
case('WebP VP8L, 0.18.0', (0, 18, 0), WEBP_L)
case('WebP VP8X, 0.19.1', (0, 19, 1), WEBP_X)
case('GIF, 0.19.1', (0, 19, 1), GIF)
case('golden image, 0.13.0 (insertion order, truncation, pickled None)', (0, 13, 0), COCO, KW)
case('golden image, 0.14.0 (None as key only)', (0, 14, 0), COCO, KW)
case('golden image, 0.15.1, no kwargs', (0, 15, 1), COCO)
case('golden image, 0.16.0, max_model_len 32768', (0, 16, 0), COCO, '', max_model_len=32768)
case('golden image, 0.16.0, max_model_len 32768, max_tokens 100, kwargs', (0, 16, 0), COCO, KW, max_model_len=32768, max_tokens=100)
# gRPC ChatInput.max_tokens (test/integration/grpc-vllm-inputs.test.ts): 32768 - 512 + 1 = max_length 32257.
case('golden image, 0.16.0, max_model_len 32768, max_tokens 512', (0, 16, 0), COCO, '', max_model_len=32768, max_tokens=512)
case('golden image (RGB PNG), 0.27.0: no io_config', (0, 27, 0), COCO)
case('grey PNG (L), 0.27.0: io_config', (0, 27, 0), GREY, io=True)
case('grey JPEG (1 component), 0.27.0: io_config', (0, 27, 0), JPG, io=True)
case('WebP VP8L without alpha, 0.27.0: no io_config', (0, 27, 0), WEBP_L)
case('GIF, 0.27.0: io_config', (0, 27, 0), GIF, io=True)
case('uuid + kwargs, 0.19.1', (0, 19, 1), COCO, '{"max_pixels": 1003520}', uuid='my-uuid-1')
case('uuid, 0.15.1 (hashed with truncation)', (0, 15, 1), COCO, '', uuid='my-uuid-1')
case('uuid, 0.16.0 (hashed with tokenization kwargs)', (0, 16, 0), COCO, '', uuid='my-uuid-1', max_model_len=4096)
case('model id other than the served name, 0.19.1', (0, 19, 1), COCO, model='/models/qwen2-vl')
# A float kwarg written with a zero fraction (CLI request file vs gRPC mm_processor_kwargs_json).
case('golden image, 0.19.1, float kwarg max_pixels 1003520.0', (0, 19, 1), COCO, '{"max_pixels": 1003520.0}')

json.dump({'generatedBy': 'test/support/vllm_mm_hash_ref.py', 'cases': cases}, sys.stdout, indent=1, ensure_ascii=False)
print()
