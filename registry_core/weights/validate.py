"""Checks at the boundary: every file and recorded value is validated here before it
is trusted, so each reader refuses a hostile or damaged file the same way.

A safetensors header is parsed and bounded by us before the library maps the file;
metadata is bounded (size, keys, string lengths, JSON nesting); recorded create
options are checked by type and range before any model is built; tensors are checked
against the model (dtype policy, finite values); text from a file is escaped before
it is shown. Every refusal is a ``WeightsError`` (or ``InvalidOverrideError``).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # reading headers and metadata needs no torch: `info FILE` and listings stay light
    import torch
    from torch import Tensor

from ..errors import InvalidOverrideError, WeightsError
from ..text import CONTROL, one_line

MAX_HEADER_BYTES = 64 << 20  # safetensors' own reader allows 100 MB; a model of 10,000 tensors needs ~1 MB
MAX_METADATA_BYTES = 16 << 20
MAX_METADATA_KEYS = 1024
MAX_KEY_CHARS = 256
MAX_JSON_DEPTH = 32
MAX_NAME_CHARS = 200
MAX_IN_CHANS = 4096
MAX_NUM_CLASSES = 1_000_000
MAX_IMAGE_SIZE = 8192
SHOWN_CHARS = 80

DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def shown(text: object, limit: int = SHOWN_CHARS) -> str:
    """``text`` safe for a terminal and a one-line message: control characters
    (ANSI escapes, newlines, bidi overrides) escaped, and cut to ``limit``."""
    text = str(text)
    cut = f"... ({len(text):,} characters)" if len(text) > limit else ""
    return one_line(text[:limit]) + cut


def json_depth(text: str) -> int:
    """How deeply ``text``'s JSON nests, counted without parsing it (no recursion)."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_json(text: str, what: str, path: object) -> Any:
    """``json.loads`` that refuses nesting deeper than ``MAX_JSON_DEPTH`` first."""
    if json_depth(text) > MAX_JSON_DEPTH:
        raise WeightsError(f"{path}: its {what} metadata nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except ValueError:
        raise WeightsError(f"{path}: its {what} metadata is not valid JSON") from None


def check_file_header(path: str | os.PathLike) -> dict[str, str]:
    """Parse and bound a safetensors header ourselves before the library maps the file:
    the declared length, every tensor's dtype x shape against its byte range, and the
    metadata, which it returns (no torch needed). ``path`` is known to be a regular file."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise WeightsError(f"{path} is not a safetensors file: {size} bytes, shorter than a header")
        length = int.from_bytes(prefix, "little")
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise WeightsError(f"{path}: its header declares {length:,} bytes "
                               f"({'more than the file holds' if length > size - 8 else f'over the {MAX_HEADER_BYTES:,} allowed'})")
        raw = handle.read(length)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WeightsError(f"{path} is not a safetensors file: its header is not UTF-8 text") from None
    header = parse_json(text, "header", path)
    if not isinstance(header, dict):
        raise WeightsError(f"{path} is not a safetensors file: its header is not a JSON object")
    data_bytes = size - 8 - length
    metadata: dict[str, str] = {}
    for key, entry in header.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise WeightsError(f"{path}: its __metadata__ is not a mapping of strings")
            check_metadata(entry, path)
            metadata = entry
        else:
            _check_entry(path, key, entry, data_bytes)
    return metadata


def _check_entry(path: Path, key: str, entry: object, data_bytes: int) -> None:
    if len(key) > MAX_KEY_CHARS:
        raise WeightsError(f"{path}: a tensor name of {len(key):,} characters (at most {MAX_KEY_CHARS})")
    if not isinstance(entry, dict):
        raise WeightsError(f"{path}: tensor {shown(key)} has no dtype, shape and offsets")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise WeightsError(f"{path}: tensor {shown(key)} has an unknown dtype {shown(dtype)}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise WeightsError(f"{path}: tensor {shown(key)} has an invalid shape {shown(shape)}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_bytes):
        raise WeightsError(f"{path}: tensor {shown(key)} has byte offsets {shown(offsets)} outside the file's "
                           f"{data_bytes:,} data bytes")
    declared = math.prod(shape) * DTYPE_BYTES[dtype]
    if declared != offsets[1] - offsets[0]:
        raise WeightsError(f"{path}: tensor {shown(key)} declares {dtype} {tuple(shape)} ({declared:,} bytes) "
                           f"for a range of {offsets[1] - offsets[0]:,} bytes")


def check_metadata(metadata: Mapping[str, str], path: object) -> None:
    """Bound a header's metadata: total size, key count and length, JSON nesting of
    each value, and the entries whose meaning we know (model name, sizes)."""
    if len(metadata) > MAX_METADATA_KEYS:
        raise WeightsError(f"{path}: its metadata has {len(metadata):,} entries (at most {MAX_METADATA_KEYS})")
    total = sum(len(k) + len(v) for k, v in metadata.items())
    if total > MAX_METADATA_BYTES:
        raise WeightsError(f"{path}: its metadata holds {total:,} characters (at most {MAX_METADATA_BYTES:,})")
    for key, value in metadata.items():
        if len(key) > MAX_KEY_CHARS:
            raise WeightsError(f"{path}: a metadata key of {len(key):,} characters (at most {MAX_KEY_CHARS})")
        if value[:1] in ("[", "{") and json_depth(value) > MAX_JSON_DEPTH:
            raise WeightsError(f"{path}: its {shown(key)} metadata nests deeper than {MAX_JSON_DEPTH} levels")
    if "model" in metadata:
        check_name(metadata["model"], f"{path}: its model entry")
    for key, cap in (("in_chans", MAX_IN_CHANS), ("num_classes", MAX_NUM_CLASSES), ("image_size", MAX_IMAGE_SIZE)):
        if key in metadata:
            bounded_int(_int_text(metadata[key]), f"{path}: its {key} entry", 0 if key == "num_classes" else 1, cap)


def _int_text(text: str) -> object:
    return int(text) if re.fullmatch(r"-?\d{1,12}", text.strip()) else text


def check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS or CONTROL.search(name):
        raise WeightsError(f"{what} is not a model name: {shown(name)}")


def bounded_int(value: object, what: str, low: int, high: int) -> int:
    """``value`` as a plain integer in ``[low, high]``, else an error naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
        raise WeightsError(f"{what} must be an integer from {low} to {high:,}, got {shown(repr(value))}")
    return int(value)


def check_image_size(value: object, what: str = "image_size") -> int:
    """An image side: a positive integer up to ``MAX_IMAGE_SIZE``."""
    return bounded_int(value, what, 1, MAX_IMAGE_SIZE)


def check_create_options(options: Mapping[str, Any], source: str = "") -> None:
    """Create options checked by type and range before any model is built: ``in_chans``
    and ``num_classes`` within their caps, flags as booleans, swaps as short names."""
    where = f"{source}: " if source else ""
    caps = {"in_chans": (1, MAX_IN_CHANS), "num_classes": (0, MAX_NUM_CLASSES)}
    for key, (low, high) in caps.items():
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high):
            raise InvalidOverrideError(key, f"{where}must be an integer from {low} to {high:,}, got {shown(repr(value))}")
    if not isinstance(options.get("features_only", False), bool):
        raise InvalidOverrideError("features_only", f"{where}must be true or false, got {shown(repr(options['features_only']))}")
    for key in ("block", "stem", "head"):
        value = options.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME_CHARS):
            raise InvalidOverrideError(key, f"{where}must be the name of a registered {key}, got {shown(repr(value))}")
    for key, value in options.items():
        if not isinstance(key, str) or len(key) > MAX_KEY_CHARS:
            raise InvalidOverrideError(shown(key), f"{where}not an option name")
        if isinstance(value, str) and len(value) > MAX_NAME_CHARS:
            raise InvalidOverrideError(key, f"{where}a text value of {len(value):,} characters (at most {MAX_NAME_CHARS})")


def fit_tensors(expected: Mapping[str, Tensor], state: Mapping[str, Tensor], *, allow_non_finite: bool = False,
                source: str = "weights") -> tuple[dict[str, Tensor], list[str]]:
    """``state``'s tensors in the dtypes of ``expected`` (keys and shapes already match),
    and notes for the user. Float tensors for float parameters are cast, and the cast
    is reported; an integer or bool tensor for a float parameter (or the reverse) would
    lose values, so it is refused. Non-finite values are refused unless allowed."""

    fitted, casts, refused, non_finite = {}, set(), [], []
    for key, tensor in state.items():
        want = expected[key].dtype
        if tensor.dtype != want:
            if tensor.is_floating_point() != want.is_floating_point or tensor.is_complex():
                refused.append(f"{key} ({_dtype(tensor.dtype)} for {_dtype(want)})")
                continue
            if want.is_floating_point:
                casts.add((_dtype(tensor.dtype), _dtype(want)))
            tensor = tensor.to(want)
        if tensor.is_floating_point() and not allow_non_finite and not all_finite(tensor):
            non_finite.append(key)
        fitted[key] = tensor
    if refused:
        raise WeightsError(f"{source}: {len(refused)} tensor(s) of the wrong kind would lose their values if cast: "
                           f"{', '.join(refused[:5])}{' ...' if len(refused) > 5 else ''}")
    if non_finite:
        raise WeightsError(f"{source}: {len(non_finite)} tensor(s) hold NaN or Inf: {', '.join(non_finite[:5])}"
                           f"{' ...' if len(non_finite) > 5 else ''}; pass allow_non_finite=True (--allow-non-finite) "
                           "to load them anyway")
    notes = [f"{source}: tensors cast from {a} to {b} to fit the model" for a, b in sorted(casts)]
    return fitted, notes


def all_finite(tensor: Tensor) -> bool:
    """No NaN or Inf in ``tensor``. Its minimum and maximum tell (both propagate NaN) in
    one pass without a mask the size of the tensor: about ten times faster than
    ``isfinite().all()``, which dominated loading a large model."""
    import torch

    if tensor.numel() == 0:
        return True
    low, high = torch.aminmax(tensor.detach().reshape(-1))
    return bool(torch.isfinite(low)) and bool(torch.isfinite(high))


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
