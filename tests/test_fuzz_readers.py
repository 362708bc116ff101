"""Fuzzing the readers of files from outside: safetensors headers and PNG metadata chunks.

Whatever the bytes, a reader either returns or raises the program's own UserError (one clear line
for the user); never another exception, never a hang. Bounded: a few hundred examples in all.
"""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fractal_studio.editing.imageio import read_png_metadata
from fractal_studio.errors import UserError
from fractal_studio.model.weights import load_model, read_config, read_header

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)

tensor_entries = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "BF16", "F16", "I64", "U8", "X9"]) | json_values,
    "shape": st.lists(st.integers(-3, 40), max_size=3) | json_values,
    "data_offsets": st.lists(st.integers(-5, 400), min_size=0, max_size=3) | json_values,
})

config_texts = st.builds(
    lambda levels, extra: json.dumps({"name": "fuzz", "levels": levels, **extra}),
    st.lists(st.fixed_dictionaries({
        "kind": st.sampled_from(["ar", "mar", "head", "x"]),
        "size": st.integers(-2, 10**7), "width": st.integers(-2, 10**6) | st.floats(),
        "depth": st.integers(-2, 10**7), "heads": st.integers(-1, 64)}), max_size=4),
    st.dictionaries(st.sampled_from(["class_num", "num_conds", "pixel_std", "sampling", "dropout"]),
                    json_values, max_size=3))


def safetensors_bytes(header, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


our_metadata = st.fixed_dictionaries({"format": st.just("fractal-studio"),
                                      "config": config_texts | st.text(max_size=30)})


@FUZZ
@given(header=st.dictionaries(st.text(max_size=12), tensor_entries | json_values, max_size=4),
       metadata=st.none() | json_values | our_metadata, data=st.binary(max_size=300))
def test_safetensors_headers(tmp_path_factory, header, metadata, data):
    path = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    if metadata is not None:
        header = {**header, "__metadata__": metadata}
    path.write_bytes(safetensors_bytes(header, data))
    for read in (read_header, read_config, load_model):
        try:
            read(path)
        except UserError:
            pass


@FUZZ
@given(raw=st.binary(max_size=64))
def test_raw_bytes_as_a_model_file(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    path.write_bytes(raw)
    try:
        read_config(path)
    except UserError:
        pass


def png_with_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="PNG")
    raw = buffer.getvalue()
    extra = b"".join(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
                     for kind, body in chunks)
    return raw[:33] + extra + raw[33:]  # after IHDR (8-byte signature + 25-byte IHDR chunk)


@FUZZ
@given(chunks=st.lists(st.tuples(st.sampled_from([b"tEXt", b"iTXt", b"zTXt"]), st.binary(max_size=80)),
                       max_size=4))
def test_png_metadata_chunks(tmp_path_factory, chunks):
    path = tmp_path_factory.mktemp("fuzz") / "image.png"
    path.write_bytes(png_with_chunks(chunks))
    try:
        record = read_png_metadata(path)
    except UserError:
        return
    assert isinstance(record, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in record.items())


@FUZZ
@given(record=json_values)
def test_our_own_metadata_chunk_with_any_json(tmp_path_factory, record):
    from fractal_studio.editing.imageio import METADATA_KEY

    path = tmp_path_factory.mktemp("fuzz") / "image.png"
    body = METADATA_KEY.encode("latin-1") + b"\0" + json.dumps(record).encode("latin-1", "replace")
    path.write_bytes(png_with_chunks([(b"tEXt", body)]))
    record_read = read_png_metadata(path)
    assert all(isinstance(v, str) for v in record_read.values())
