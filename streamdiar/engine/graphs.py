"""Fixed-shape batched model calls: pad to a bucket, one copy in, run or replay, one copy out.

A model call whose batch varies (the streams due this round) runs on one of a few fixed shapes,
the buckets 1, 2, 4, ... max_batch. Fixed shapes are what let CUDA capture each bucket once as a
graph and replay it every step without per-kernel launch costs. All inputs are packed row-wise
into one pinned host buffer (one host-to-device copy) and all outputs into one device tensor
(one copy back). Without capture (on CPU, or with graphs switched off) the same buffers and
shapes run eagerly, so that path and the graph path differ only in `replay()`.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

WARMUP_CALLS = 3  # eager calls before capture, so cuDNN/cuBLAS choose kernels and allocate workspaces


@dataclass(frozen=True)
class Port:
    """One tensor argument or result: its shape without the batch axis, and where the batch axis
    sits (0 for most tensors; 1 for an LSTM state shaped (2, batch, hidden))."""

    shape: tuple[int, ...]
    batch_axis: int = 0

    @property
    def width(self) -> int:
        return math.prod(self.shape)


def bucket_sizes(max_batch: int) -> tuple[int, ...]:
    """1, 2, 4, ... below max_batch, then max_batch itself."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    sizes = [1 << k for k in range(max_batch.bit_length()) if 1 << k < max_batch]
    return (*sizes, max_batch)


def bucket_for(rows: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket that holds `rows` (1 <= rows <= the largest bucket)."""
    for size in buckets:
        if size >= rows:
            return size
    raise ValueError(f"{rows} rows do not fit the largest bucket ({buckets[-1]})")


def pack(tensors: tuple[torch.Tensor, ...], ports: tuple[Port, ...], out: torch.Tensor | None = None) -> torch.Tensor:
    """Tensors sharing a batch size -> (batch, sum of port widths), one row per item."""
    rows = []
    for tensor, port in zip(tensors, ports, strict=True):
        item = tensor.movedim(port.batch_axis, 0)
        if tuple(item.shape[1:]) != port.shape:
            raise ValueError(f"expected items of shape {port.shape}, got {tuple(item.shape[1:])}")
        rows.append(item.reshape(item.shape[0], port.width))
    if out is None:
        return torch.cat(rows, dim=1)
    return torch.cat(rows, dim=1, out=out)


def unpack(packed: torch.Tensor, ports: tuple[Port, ...]) -> tuple[torch.Tensor, ...]:
    """Inverse of `pack`."""
    batch = packed.shape[0]
    tensors, column = [], 0
    for port in ports:
        part = packed[:, column : column + port.width].reshape(batch, *port.shape)
        tensors.append(part.movedim(0, port.batch_axis))
        column += port.width
    return tuple(tensors)


class CaptureSpace:
    """What every graph of one engine shares: one memory pool and one capture stream (the same
    stream for every capture lets later captures reuse the pool's freed blocks)."""

    def __init__(self, device: torch.device):
        self.pool = torch.cuda.graph_pool_handle()
        self.stream = torch.cuda.Stream(device)


class BucketedCall:
    """`fn` on `device` at fixed batch buckets, called with and returning CPU tensors.

    A drop-in for `fn` for callers that hold CPU tensors: it returns what `fn` returns, one
    tensor or a tuple. Batches above max_batch run in chunks of max_batch. With a CaptureSpace
    every bucket is captured as a CUDA graph at construction; `optional` callables whose capture
    fails run eagerly instead (`capture_error` says why), others raise.
    """

    def __init__(self, fn: Callable, inputs: tuple[Port, ...], outputs: tuple[Port, ...], device: torch.device,
                 max_batch: int, capture: CaptureSpace | None = None, optional: bool = False):
        self.fn = fn
        self.inputs, self.outputs = inputs, outputs
        self.device = device
        self.buckets = bucket_sizes(max_batch)
        self.max_batch = max_batch
        pinned = device.type == "cuda"  # page-locked host memory: asynchronous DMA copies
        in_width, out_width = sum(p.width for p in inputs), sum(p.width for p in outputs)
        self._host_in = torch.zeros(max_batch, in_width, pin_memory=pinned)
        self._host_out = torch.zeros(max_batch, out_width, pin_memory=pinned)
        # one device input buffer; bucket b reads its first b rows (a graph keeps that address)
        self._device_in = torch.zeros(max_batch, in_width, device=device)
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._graph_out: dict[int, torch.Tensor] = {}
        self.capture_error: str | None = None
        if capture is not None:
            try:
                self._capture(capture)
            except RuntimeError as exc:
                if not optional:
                    raise
                self._graphs.clear()
                self._graph_out.clear()
                self.capture_error = str(exc).splitlines()[0]
                warnings.warn(f"CUDA graph capture failed, running eagerly on {device}: {self.capture_error}")

    @property
    def captured(self) -> bool:
        return bool(self._graphs)

    def _run(self, packed_in: torch.Tensor) -> torch.Tensor:
        result = self.fn(*unpack(packed_in, self.inputs))
        return pack(result if isinstance(result, tuple) else (result,), self.outputs)

    @torch.inference_mode()
    def _capture(self, space: CaptureSpace) -> None:
        current = torch.cuda.current_stream(self.device)
        space.stream.wait_stream(current)
        with torch.cuda.stream(space.stream):
            for size in self.buckets:
                for _ in range(WARMUP_CALLS):
                    self._run(self._device_in[:size])
        current.wait_stream(space.stream)
        # largest first: smaller captures then fit in blocks the larger ones left in the pool
        for size in reversed(self.buckets):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=space.pool, stream=space.stream):
                self._graph_out[size] = self._run(self._device_in[:size])
            self._graphs[size] = graph

    @torch.inference_mode()
    def __call__(self, *tensors: torch.Tensor):
        batch = tensors[0].shape[self.inputs[0].batch_axis]
        chunks = []
        for start in range(0, batch, self.max_batch):
            rows = min(self.max_batch, batch - start)
            part = tuple(t.narrow(p.batch_axis, start, rows) for t, p in zip(tensors, self.inputs, strict=True))
            chunks.append(self._call_bucket(part, rows))
        if not chunks:
            packed = torch.zeros(0, self._host_out.shape[1])
        else:
            packed = chunks[0] if len(chunks) == 1 else torch.cat(chunks)
        results = unpack(packed, self.outputs)
        return results if len(results) > 1 else results[0]

    def _call_bucket(self, tensors: tuple[torch.Tensor, ...], rows: int) -> torch.Tensor:
        size = bucket_for(rows, self.buckets)
        pack(tensors, self.inputs, out=self._host_in[:rows])
        self._host_in[rows:size].zero_()  # padding rows: zeros, so every row stays finite
        device_in = self._device_in[:size]
        device_in.copy_(self._host_in[:size], non_blocking=True)
        if self._graphs:
            self._graphs[size].replay()
            device_out = self._graph_out[size]
        else:
            device_out = self._run(device_in)
        host_out = self._host_out[:size]
        host_out.copy_(device_out, non_blocking=True)
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()
        return host_out[:rows].clone()  # the host buffer is reused by the next call
