"""Process and device setup: torchrun/DDP (NCCL on GPUs, gloo on CPU), the device's dense bf16 peak for MFU,
and the autocast context (bf16 on CUDA by default; CPU runs fp32 unless bf16 is asked for, as in build-nanogpt)."""

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

# Dense bf16 tensor-core peaks, FLOP/s (NVIDIA datasheets; llm.c llmc/mfu.h; nanochat get_peak_flops).
# Never the 2:4-sparsity figures (H100 SXM 1979).
# First match wins (PCIe/NVL before the SXM default); unknown GPUs get no MFU figure.
PEAK_BF16 = [
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
]


@dataclass(frozen=True)
class Dist:
    rank: int
    local_rank: int
    world: int
    device: torch.device

    @property
    def master(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Dist:
    """Read torchrun's RANK/LOCAL_RANK/WORLD_SIZE; start the process group when world > 1."""
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                "--device cuda but torch sees no GPU.\n---> HINT: use --device cpu, or install "
                "a CUDA build of torch."
            )
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
        # TF32 for any fp32 matmul left outside autocast (Ampere+; build-nanogpt 1000 -> 333 ms)
        torch.set_float32_matmul_precision("high")
    else:
        dev = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if dev.type == "cuda" else "gloo", device_id=dev if dev.type == "cuda" else None
        )
    return Dist(rank, local_rank, world, dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def autocast(dev: torch.device, dtype: str = "auto"):
    """The mixed-precision context of a forward pass.

    auto: bf16 autocast on CUDA (llm.c, nanoGPT), plain fp32 on CPU, where bf16 matmuls are slower on most
    cores. bfloat16: bf16 autocast on any device, CPU included (build-nanogpt does this), so the GPU's
    numerics can be checked on a CPU. float32: no autocast anywhere."""
    if dtype not in ("auto", "bfloat16", "float32"):
        raise ValueError(f"unknown dtype {dtype!r}; use auto, bfloat16 or float32")
    if dtype == "bfloat16" or (dtype == "auto" and dev.type == "cuda"):
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({os.cpu_count()} cores)"


def peak_flops(dev: torch.device) -> float | None:
    """Dense bf16 peak of one device, or None where we make no MFU claim (CPU, unknown GPUs)."""
    if dev.type != "cuda":
        return None
    name = torch.cuda.get_device_name(dev)
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= dist.get_world_size()
    return t
