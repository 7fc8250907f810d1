"""Model inputs for one window (CPU) and a batch of windows (the GPU worker): pure tensor code.

:func:`prepare_window` runs the checkpoint's processor on one window's own frames, with
``do_sample_frames=False`` and video metadata in a millisecond time base (``fps=1000``,
``frames_indices = round((pts - time_offset_s) * 1000)``) so the timestamps written before each
frame's tokens are the real ones, relative to ``time_offset_s`` (the window start). Frames are
resized to the processor's size but kept as uint8 patches (4x less data to ship than float32);
:func:`collate` left-pads the token sequences of a batch, concatenates the patches, shifts the
pooling indices and applies the processor's rescale/normalize on the target device. Collating
single windows gives exactly what the processor gives for the same windows in one batched call.
:func:`prepare_images` does the same for an image set, through the processor's image path.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = [
    "IMAGE_KEYS", "VIDEO_KEYS", "collate", "image_request", "pixel_norm", "prepare_images", "prepare_window",
    "strip_special_tokens", "video_request",
]

VIDEO_KEYS = ("pixel_values_videos", "video_token_pooling", "video_grids")  # a window's visual inputs
IMAGE_KEYS = ("pixel_values", "image_token_pooling", "image_grids", "image_num_crops")  # an image set's


def strip_special_tokens(text: str, tokenizer: Any) -> str:
    """User text with the tokenizer's special tokens removed (a query cannot inject ``<|video|>``)."""
    specials = set(tokenizer.all_special_tokens) | {"<|video|>", "<|image|>"}
    for token in sorted(specials, key=len, reverse=True):
        text = text.replace(token, "")
    return text


def video_request(
    processor: Any, frames: np.ndarray, timestamps_s: Sequence[float], time_offset_s: float, user_text: str
) -> tuple[str, np.ndarray, dict[str, Any]]:
    """What the processor is given for one window, whichever engine runs it: the chat-templated prompt, the
    frames, and their video metadata in a millisecond time base (so each frame's timestamp is its own).
    :func:`prepare_window` runs transformers' processor on it; vLLM's engine runs the same processor on
    the same three (vidlake/models/vllm_engine.py)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 N x H x W x 3, got {frames.dtype} {frames.shape}")
    if len(timestamps_s) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(timestamps_s)} timestamps")
    indices = [round((float(t) - time_offset_s) * 1000) for t in timestamps_s]
    if min(indices) < 0:
        raise ValueError(f"a frame time lies before the window offset {time_offset_s:.3f}s")
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": user_text}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    metadata = {
        "total_num_frames": max(indices) + 1, "fps": 1000.0, "frames_indices": indices,
        "duration": (max(indices) + 1) / 1000.0, "height": int(frames.shape[1]), "width": int(frames.shape[2]),
    }
    return text, frames, metadata


def prepare_window(
    processor: Any, frames: np.ndarray, timestamps_s: Sequence[float], time_offset_s: float, user_text: str
) -> dict[str, Any]:
    """Chat-templated, tokenized inputs for one window: numpy arrays plus token counts."""
    text, frames, metadata = video_request(processor, frames, timestamps_s, time_offset_s, user_text)
    out = processor(
        text=[text], videos=[frames], video_metadata=[metadata], do_sample_frames=False,
        input_data_format="channels_last", do_rescale=False, do_normalize=False, return_tensors="pt",
    )
    input_ids = out["input_ids"][0].numpy().astype(np.int32)
    patch_id = processor.tokenizer.convert_tokens_to_ids("<im_patch>")
    return {
        "input_ids": input_ids,
        "mm_token_type_ids": out["mm_token_type_ids"][0].numpy().astype(np.int8),
        "pixel_values_videos": out["pixel_values_videos"].numpy(),
        "video_token_pooling": out["video_token_pooling"].numpy().astype(np.int32),
        "video_grids": out["video_grids"][0].numpy().astype(np.int32),
        "prompt_tokens": int(len(input_ids)),
        "visual_tokens": int((input_ids == patch_id).sum()),
    }


def image_request(processor: Any, images: Sequence[np.ndarray], user_text: str) -> tuple[str, list[np.ndarray]]:
    """What the processor is given for one image set: the chat-templated prompt (one ``<|image|>`` per
    image before the text) and the images."""
    images = [np.asarray(im) for im in images]
    if not images or any(im.ndim != 3 or im.shape[-1] != 3 or im.dtype != np.uint8 for im in images):
        raise ValueError("images must be uint8 H x W x 3 arrays, at least one")
    messages = [{"role": "user", "content": [*({"type": "image"} for _ in images), {"type": "text", "text": user_text}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), images


def prepare_images(processor: Any, images: Sequence[np.ndarray], user_text: str) -> dict[str, Any]:
    """Chat-templated, tokenized inputs for one image set (the processor's image path, each image tiled
    into crops): numpy arrays plus token counts."""
    text, images = image_request(processor, images, user_text)
    out = processor(text=[text], images=[images], input_data_format="channels_last", do_rescale=False,
                    do_normalize=False, return_tensors="pt")
    input_ids = out["input_ids"][0].numpy().astype(np.int32)
    patch_id = processor.tokenizer.convert_tokens_to_ids("<im_patch>")
    return {
        "input_ids": input_ids,
        "mm_token_type_ids": out["mm_token_type_ids"][0].numpy().astype(np.int8),
        "pixel_values": out["pixel_values"].numpy(),
        "image_token_pooling": out["image_token_pooling"].numpy().astype(np.int32),
        "image_grids": out["image_grids"].numpy().astype(np.int32),
        "image_num_crops": out["image_num_crops"].numpy().astype(np.int32),
        "prompt_tokens": int(len(input_ids)),
        "visual_tokens": int((input_ids == patch_id).sum()),
    }


def pixel_norm(video_processor: Any) -> tuple[float | None, tuple[float, ...] | None, tuple[float, ...] | None]:
    """(rescale factor or None, mean or None, std or None) as the checkpoint's video processor applies them."""
    factor = video_processor.rescale_factor if video_processor.do_rescale else None
    if video_processor.do_normalize:
        return factor, tuple(video_processor.image_mean), tuple(video_processor.image_std)
    return factor, None, None


def collate(rows: Sequence[dict[str, Any]], pad_id: int, norm: tuple, device: str = "cpu", dtype: Any = None):
    """One batch of prepared windows, or of prepared image sets (not mixed), as model tensors: left
    padding, patches concatenated, pooling indices shifted past the rows before.

    ``norm`` is :func:`pixel_norm`'s triple for the rows' processor (video or image); ``dtype`` is the
    model's floating dtype for pixels.
    """
    import torch

    length = max(len(r["input_ids"]) for r in rows)
    batch = len(rows)
    input_ids = torch.full((batch, length), pad_id, dtype=torch.long)
    attention = torch.zeros((batch, length), dtype=torch.long)
    mm_types = torch.zeros((batch, length), dtype=torch.long)
    images = rows[0].get("pixel_values") is not None
    if any((r.get("pixel_values") is not None) != images for r in rows):
        raise ValueError("a batch mixes video windows and image sets")
    values_key, pooling_key, grids_key = (IMAGE_KEYS if images else VIDEO_KEYS)[:3]
    pixels, pooling, grids, crops, offset = [], [], [], [], 0
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        input_ids[i, length - n :] = torch.from_numpy(np.asarray(row["input_ids"], dtype=np.int64))
        attention[i, length - n :] = 1
        mm_types[i, length - n :] = torch.from_numpy(np.asarray(row["mm_token_type_ids"], dtype=np.int64))
        patches = torch.from_numpy(np.ascontiguousarray(row[values_key]))
        pool = torch.from_numpy(np.asarray(row[pooling_key], dtype=np.int64))
        pooling.append(torch.where(pool >= 0, pool + offset, pool))
        pixels.append(patches)
        grids.append(torch.from_numpy(np.asarray(row[grids_key], dtype=np.int64)))
        if images:
            crops.append(torch.from_numpy(np.asarray(row["image_num_crops"], dtype=np.int64)))
        offset += patches.shape[0] * patches.shape[1]
    values = _normalize(torch.cat(pixels).to(device), norm)
    out = {
        "input_ids": input_ids.to(device),
        "attention_mask": attention.to(device),
        "mm_token_type_ids": mm_types.to(device),
        values_key: values.to(dtype) if dtype is not None else values,
        pooling_key: torch.cat(pooling).to(device),
        # a window's grid is one row per video; an image set's, one row per image
        grids_key: (torch.cat(grids) if images else torch.stack(grids)).to(device),
    }
    if images:
        out["image_num_crops"] = torch.cat(crops).to(device)
    return out


def _normalize(patches, norm: tuple):
    """The processor's (fused) rescale + normalize, on uint8 patches of shape [..., p*p*3]."""
    import torch

    factor, mean, std = norm
    if factor is None and mean is None:
        return patches
    shape = patches.shape
    values = patches.reshape(*shape[:-1], -1, 3).to(torch.float32)
    if mean is not None:
        scale = 1.0 / factor if factor is not None else 1.0
        mean_t = torch.tensor(mean, device=values.device) * scale
        std_t = torch.tensor(std, device=values.device) * scale
        values = values.sub_(mean_t).div_(std_t)
    else:
        values = values * factor
    return values.reshape(shape)
