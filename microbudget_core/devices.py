"""Where training runs: Hugging Face Accelerate's device, mixed precision, gradient accumulation and processes.

The settings come from `use()` (the CLI's --device, the app's sidebar); several processes come from
`accelerate launch`. Every training loop asks `accelerator()` for one. Only the main process writes caches,
artifacts and runs; the others train their share and wait. Measurement stays on the CPU unless asked
(`measure.MeasureConfig.device`): the serving target's numbers are what this tool shows.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch

from .support import cpu, ranges
from .support.errors import MicrobudgetError

AUTO, CPU, CUDA, MPS = "auto", "cpu", "cuda", "mps"
DEVICES = (AUTO, CPU, CUDA, MPS)
PRECISIONS = ("no", "bf16", "fp16")


@dataclass(frozen=True)
class Training:
    device: str = field(default=AUTO, metadata={"choices": DEVICES})  # auto: the GPU where there is one
    mixed_precision: str = field(default="no", metadata={"choices": PRECISIONS})
    gradient_accumulation: int = field(default=1, metadata={"min": 1})  # batches per optimizer step

    def __post_init__(self) -> None:
        ranges.check(self, "training")
        device = resolved(self.device)
        if self.mixed_precision not in precisions(device):
            raise MicrobudgetError(f"{self.mixed_precision} mixed precision does not run on this {device}.",
                                   f"Use --mixed-precision {' or '.join(precisions(device))}.")


def available() -> list[str]:
    """The devices this machine can train on, the CPU first."""
    return [CPU] + [CUDA] * torch.cuda.is_available() + [MPS] * torch.backends.mps.is_available()


def resolved(device: str, option: str = "--device") -> str:
    """`auto` as the device it picks (a GPU where there is one); a device this machine lacks is refused, naming the
    `option` that asked for it."""
    if device == AUTO:
        return available()[-1]
    if device not in available():
        build = f"torch {torch.__version__} sees no {'CUDA GPU' if device == CUDA else 'Apple GPU (MPS)'}"
        raise MicrobudgetError(f"{option} {device}: this machine has no such device ({build}).",
                               f"Use {option} {CPU}" + (" or auto." if option == "--device" else "."))
    return device


def precisions(device: str) -> list[str]:
    """The mixed precisions training on `device` can use (fp16 needs a GPU; bf16 a CPU or a GPU that has it)."""
    half = device != CPU
    bf16 = device != CUDA or torch.cuda.is_bf16_supported()
    return ["no"] + ["bf16"] * bf16 + ["fp16"] * half


_current: contextvars.ContextVar[Training] = contextvars.ContextVar("training", default=Training())
_parted = False  # set once the other processes have left (see part_ways)


def use(settings: Training) -> None:
    """Train with `settings` from now on, in this thread: on a shared server each visitor's page has its own."""
    _current.set(settings)


def current() -> Training:
    return _current.get()


def processes() -> int:
    """How many processes train together (`accelerate launch --num_processes N`; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's number among them (0: the main one)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True in the one process that writes caches, artifacts and runs."""
    return rank() == 0


def accelerator():
    """A fresh Accelerator for one training loop, with the current settings."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState, GradientState

    if processes() == 1:
        # One process: the app's sidebar may change the device or precision between runs, and Accelerate keeps its
        # first settings for the whole process. Its own tests start afresh the same way (a private reset).
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    return Accelerator(cpu=resolved(current().device) == CPU, mixed_precision=current().mixed_precision,
                       gradient_accumulation_steps=current().gradient_accumulation,
                       # a head reading some layers leaves others (a pooler) without gradients
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def update(accelerator, loss: torch.Tensor, optimizer, schedule) -> None:
    """One batch's backward and, at the end of an accumulation, the optimizer's and the schedule's step."""
    accelerator.backward(loss)
    optimizer.step()  # Accelerate's optimizer skips it until the accumulation ends
    if accelerator.sync_gradients:
        schedule.step()
    optimizer.zero_grad()


def release(accelerator, wrapped: torch.nn.Module) -> torch.nn.Module:
    """The trained model back on the CPU without mixed precision's autocast; the accelerator lets go of it."""
    model = accelerator.unwrap_model(wrapped, keep_fp32_wrapper=False).to(CPU)
    accelerator.free_memory()
    return model


def device() -> torch.device:
    """The device this process trains and computes features on."""
    if processes() > 1:
        from accelerate import PartialState

        return PartialState().device
    return torch.device(resolved(current().device))


def share(batch: Sequence[int]) -> Sequence[int]:
    """This process's part of a batch every process drew alike (a batch smaller than the processes: all of it)."""
    count = processes()
    return batch[rank()::count] if count > 1 and len(batch) >= count else batch


def same_everywhere(value: Any) -> Any:
    """The main process's `value` in every process: decisions (early stopping) must not differ between them."""
    if processes() == 1 or _parted:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """The main process runs the block first (it computes and writes a cache entry), then the others (they read it)."""
    if processes() == 1 or _parted:
        yield
        return
    from accelerate import PartialState

    with PartialState().main_process_first():
        yield


def wait_for_everyone() -> None:
    if processes() > 1 and not _parted:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def part_ways() -> bool:
    """The processes' last meeting once no training is left: afterwards the main process measures and stores alone,
    once the others on this machine have exited (they would skew its timings). True in the main process (go on),
    False in the others (their share is done)."""
    global _parted
    if processes() > 1 and not _parted:
        from accelerate.utils import gather_object

        everyone = gather_object([(socket.gethostname(), os.getpid())])
        _parted = True
        if is_main():
            neighbours = [pid for host, pid in everyone if host == socket.gethostname() and pid != os.getpid()]
            _wait_for_exit(neighbours)
        elif torch.distributed.is_initialized():
            # Leave the group before exiting: a process that exits with gloo's threads still running can abort
            # ("terminate called without an active exception"), seen in 2 of 7 two-process runs.
            torch.distributed.destroy_process_group()
    return is_main()


def _wait_for_exit(pids: list[int], limit_s: float = 120) -> None:
    import psutil  # Accelerate's own dependency

    running = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            running.append(psutil.Process(pid))
    psutil.wait_procs(running, timeout=limit_s)


def placed(model: torch.nn.Module, where: torch.device | None = None) -> torch.nn.Module:
    """`model` on the device (a copy there: the caller's, often a cached original, stays on the CPU)."""
    where = where or device()
    return model if where.type == CPU else copy.deepcopy(model).to(where)


def sending(preprocess: Callable[[Sequence[Any]], dict[str, torch.Tensor]],
            where: torch.device | None = None) -> Callable[[Sequence[Any]], dict[str, torch.Tensor]]:
    """`preprocess` whose tensors land on the device."""
    from accelerate.utils import send_to_device

    where = where or device()
    return preprocess if where.type == CPU else lambda inputs: send_to_device(preprocess(inputs), where)


def hardware(where: str | torch.device = CPU) -> str:
    """What runs the work, in one line: the CPU (model, cores, kernel flags) or the GPU (name, memory)."""
    kind = torch.device(where).type
    if kind == CUDA:
        props = torch.cuda.get_device_properties(torch.device(where))
        return f"{props.name}, {props.total_memory / 2 ** 30:.0f} GB"
    return f"Apple GPU (MPS) of {cpu.describe()}" if kind == MPS else cpu.describe()


def training_hardware() -> str:
    """The hardware of this training: the device, times the processes where several train together."""
    many = f" x {processes()} processes" if processes() > 1 else ""
    return hardware(device()) + many
