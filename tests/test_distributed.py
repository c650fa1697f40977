"""Real multi-process training: `torchrun --nproc_per_node 2` (gloo, CPU) runs pretraining and
fine-tuning; both ranks must end bit-identical and only rank 0 may write files."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from dist_helpers import free_port, launch_env
from helpers import run_attiqa

from attiqa.config import FinetuneConfig, PretrainConfig
from attiqa.device import resolve_device
from attiqa.models import load_model
from attiqa.sharding import is_dist, process_group, world_size
from attiqa.training.distributed import all_gather_cat
from attiqa.training.trainer import weights_hash

SCRIPT = """
import faulthandler, json, os, sys, time
from pathlib import Path

faulthandler.enable()  # a rank killed by a signal (a SIGABRT was seen once under load) prints its stacks
import attiqa.models.efficientnet_lite as lite
from attiqa.config import FinetuneConfig, PretrainConfig
from attiqa.sharding import process_group
from attiqa.training.finetune import finetune
from attiqa.training.pretrain import pretrain
from attiqa.training.trainer import DEBUG_HASH_ENV

# a spy, not a stand-in: the real recomputation runs, its calls are counted
real, calls = lite.recomputed, []
lite.recomputed = lambda block, x: calls.append(1) or real(block, x)
rank = os.environ["RANK"]


def no_gloo_threads():
    # A stage's group destroyed: none of gloo's threads may outlive it. They did (session 47: DDP's late
    # import of torch.distributed.nn.functional kept the group to the interpreter's teardown, where a rank
    # now and then aborted, SIGABRT), until attiqa.sharding imports it before the group is made.
    threads = []
    for t in os.listdir("/proc/self/task"):
        try:
            threads.append(Path(f"/proc/self/task/{t}/comm").read_text().strip())
        except OSError:  # a thread that ended meanwhile
            pass
    assert not [n for n in threads if "gloo" in n], f"threads left after the stage: {sorted(threads)}"


def run(args):
    os.environ[DEBUG_HASH_ENV] = args["hashes"]  # each stage's hashes and files in a folder of its own
    before = len(calls)
    if args["stage"] == "pretrain":
        pretrain(PretrainConfig(**args["cfg"]), Path(args["labels"]), Path(args["out"]), progress=False)
    else:
        finetune(FinetuneConfig(**args["cfg"]), Path(args["init"]), Path(args["out"]), progress=False)
    Path(args["hashes"], f"rank{rank}.calls").write_text(str(len(calls) - before))
    print(f"rank {rank}: {args['stage']} returned", file=sys.stderr, flush=True)


stages = json.loads(sys.argv[1])
# The first two as a library caller runs them: each makes and destroys its own group (the second group of a
# process was refused by gloo until session 60: it read the first one's addresses from the job's store).
for i, args in enumerate(stages[:2]):
    if i and rank == "0":
        time.sleep(2)  # rank 0 reaches the second group last (it writes the stage's files): the refused case
    run(args)
    no_gloo_threads()
with process_group():  # the others share one group, as the stages of `attiqa train` do
    for args in stages[2:]:
        run(args)
no_gloo_threads()
"""


def read_ranks(hash_dir: Path) -> tuple[dict, dict]:
    r0 = json.loads((hash_dir / "rank0.json").read_text())
    r1 = json.loads((hash_dir / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    return r0, r1


@pytest.fixture(scope="module")
def stages(tmp_path_factory, photos) -> Path:
    """The training stages the tests below check, run as one job of `torchrun --nproc_per_node 2` (gloo;
    one launch, not one a stage: each pays torch's start-up in three processes): the first two each in a
    group of its own, as a library caller runs them, the others in one group, as `attiqa train` does. Each
    stage ``NAME`` left its weights' hash and written files by rank in ``hashes/NAME``, its count of
    recomputed blocks in ``hashes/NAME/rank<r>.calls``; its outputs in the run folder each test names."""
    from helpers import write_label_set, write_mos_set

    tmp = tmp_path_factory.mktemp("stages")
    labels = write_label_set(tmp / "labels", photos, shorter=64, factors=(0.6, 1.0, 1.4))
    three = dict(list(photos.items())[:3])
    labels3 = write_label_set(tmp / "labels3", three, shorter=64, factors=(0.6, 1.4))
    mos = write_mos_set(tmp / "mos", three, split_column=True, shorter=64)
    cache = str(tmp / "cache")
    common = {"backbone": "tiny", "pretrained_backbone": False, "head_hidden": 16, "batch_size": 8,
              "lr": 1e-3, "crop_size": 48, "num_workers": 0, "device": "cpu"}  # fmt: skip
    fine = {"csv": str(mos), "image_root": str(mos.parent / "images"), "mos_hidden": 16, "batch_size": 8,
            "resize_shorter": 56, "crop_size": 48, "num_workers": 0, "device": "cpu"}  # fmt: skip
    jobs = {
        # test_torchrun_two_processes_pretrain_then_finetune
        "plain_pretrain": ("pretrain", PretrainConfig(**common, epochs=2, hflip=True), labels, "run"),
        "plain_finetune": ("finetune", FinetuneConfig(**fine, epochs=2), "run", "run"),
        # test_torchrun_cached_feature_stages_write_only_on_rank_0
        "cached_pretrain": ("pretrain", PretrainConfig(**common, epochs=4, resize_shorter=56,
                                                       feature_cache=True, feature_cache_dir=cache),
                            labels3, "cached"),
        "cached_finetune": ("finetune", FinetuneConfig(**fine, epochs=3, feature_cache=True,
                                                       feature_cache_dir=cache), "cached", "cached"),
    }  # fmt: skip
    # test_torchrun_recomputed_blocks_train_the_same_weights_bit_for_bit
    for recompute in (False, True):
        lite = PretrainConfig(
            backbone="efficientnet_lite0", pretrained_backbone=False, head_hidden=16, epochs=2, batch_size=4,
            lr=1e-3, crop_size=64, hflip=True, num_workers=0, device="cpu", checkpoint_activations=recompute,
        )  # fmt: skip
        jobs[f"lite_{recompute}"] = ("pretrain", lite, labels3, f"lite_{recompute}")
    args = []
    for name, (stage, cfg, data, out) in jobs.items():
        hashes = tmp / "hashes" / name
        one = {"stage": stage, "cfg": asdict(cfg), "out": str(tmp / out), "hashes": str(hashes)}
        if stage == "pretrain":
            one["labels"] = str(data)
        else:  # fine-tuning from the pretraining of the same run folder
            one["init"] = str(tmp / data / "pretrain" / "model.safetensors")
        hashes.mkdir(parents=True)
        args.append(one)
    script = tmp / "run_stages.py"
    script.write_text(SCRIPT)
    proc = run_attiqa(json.dumps(args), ranks=2, script=script, env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-8000:]
    return tmp


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_torchrun_two_processes_pretrain_then_finetune(stages):
    out = stages / "run"
    r0, r1 = read_ranks(stages / "hashes" / "plain_pretrain")
    assert r0["hash"] == r1["hash"], "ranks ended with different weights"
    assert r1["files"] == []  # only rank 0 writes
    final = out / "pretrain" / "model.safetensors"
    assert str(final) in r0["files"] and str(out / "pretrain" / "last.safetensors") in r0["files"]
    model, card = load_model(final)
    assert weights_hash(model) == r0["hash"]  # the file holds exactly the ranks' weights
    assert card["world_size"] == 2 and card["per_process_batch"] == 4  # global batch 8 / 2 processes
    assert len(card["history"]) == 2 and bool(model.calibrated)

    r0, r1 = read_ranks(stages / "hashes" / "plain_finetune")
    assert r0["hash"] == r1["hash"] and r1["files"] == []
    best, card = load_model(out / "finetune" / "best.safetensors")
    assert card["dataset"]["n_val"] == 10 and card["metrics"]["n"] == 10  # gathered from both ranks
    last, _ = load_model(out / "finetune" / "last.safetensors")
    assert weights_hash(last) == r0["hash"]


def test_single_process_helpers_are_no_ops():
    t = torch.arange(6.0).view(3, 2)
    assert world_size() == 1 and torch.equal(all_gather_cat(t), t)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with process_group() as state:  # no torchrun: no group is made, none is destroyed, errors pass through
        assert (state.world_size, state.owns_group, is_dist()) == (1, False, False)
    with pytest.raises(ValueError, match="inside"), process_group():
        raise ValueError("inside")


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_torchrun_cached_feature_stages_write_only_on_rank_0(stages):
    """The cached-feature loops under torchrun: rank 0 alone fills the feature cache and writes every
    checkpoint (before the one loop, each rank wrote the same files); both ranks end with the same weights."""
    out = stages / "cached"
    r0, r1 = read_ranks(stages / "hashes" / "cached_pretrain")
    assert r0["hash"] == r1["hash"] and r1["files"] == []
    assert str(out / "pretrain" / "last.safetensors") in r0["files"]
    r0, r1 = read_ranks(stages / "hashes" / "cached_finetune")
    assert r1["files"] == [] and str(out / "finetune" / "best.safetensors") in r0["files"]
    assert r0["hash"] == r1["hash"]
    # Each image's features were computed once: rank 1 waited for rank 0's chunks and read them.
    from safetensors import safe_open

    keys = []
    for chunk in (stages / "cache").rglob("chunk-*.safetensors"):
        with safe_open(str(chunk), "pt") as fh:
            keys += json.loads(fh.metadata()["keys"])
    assert keys and len(keys) == len(set(keys))


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_torchrun_recomputed_blocks_train_the_same_weights_bit_for_bit(stages):
    """``pretrain.checkpoint_activations`` under DDP (2 processes, gloo): the blocks are recomputed in the
    backward pass on both ranks, and the run ends with the weights, the batch-norm running statistics (each
    moved once a step, then averaged over the ranks at each epoch's end) and the calibration of the run that
    keeps the activations, bit for bit. DDP's gradient hooks sit on the parameters' accumulators, which the
    non-reentrant recomputation does not run again: each gradient is all-reduced once, as without it."""
    runs = {}
    for recompute in (False, True):
        hashes = stages / "hashes" / f"lite_{recompute}"
        r0, r1 = read_ranks(hashes)
        assert r0["hash"] == r1["hash"], "ranks ended with different weights"
        calls = [int((hashes / f"rank{r}.calls").read_text()) for r in (0, 1)]
        model, card = load_model(stages / f"lite_{recompute}" / "pretrain" / "model.safetensors")
        runs[recompute] = (r0["hash"], calls, model.state_dict(), card["global_step"])
    (h_kept, calls_kept, kept, steps), (h_rec, calls_rec, rec, steps_rec) = runs[False], runs[True]
    assert calls_kept == [0, 0]
    assert steps == steps_rec == 2 and calls_rec[0] == calls_rec[1] == 16 * steps  # Lite0's 16 blocks a step
    assert h_rec == h_kept, "recomputed blocks under DDP trained other weights"
    for k in kept:
        assert torch.equal(rec[k], kept[k]), k
    tracked = [v for k, v in rec.items() if k.endswith("num_batches_tracked")]
    assert tracked and all(int(v) == steps for v in tracked)  # once a step, not again in the recomputation


def test_world_size_without_torchrun_is_one_line_naming_the_fix(photo_dir, tmp_path):
    """`WORLD_SIZE=2 attiqa score DIR -o s.csv` (a job script's export, a shell left from a launcher).
    **Was**: torch's ValueError as a 20-line traceback ("env:// rendezvous: environment variable RANK
    expected, but not set"), exit 1. Now one line naming what is missing, the two fixes; nothing written."""
    from helpers import attiqa_cmd

    out = tmp_path / "s.csv"
    cmd = attiqa_cmd("score", photo_dir, "-m", "classical", "--workers", "0", "-o", out)
    res = subprocess.run(cmd, env=launch_env(WORLD_SIZE="2"), capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: WORLD_SIZE=2 is set but not RANK, MASTER_ADDR, MASTER_PORT"), line
    assert "torchrun --nproc_per_node 2 -m attiqa.cli" in line and "unset WORLD_SIZE" in line
    assert not out.exists()


def test_a_rank_outside_the_world_size_is_one_line(photo_dir, tmp_path):
    """`WORLD_SIZE=2 RANK=2 …` (a launcher script numbering from 1, or copying SLURM_PROCID of a larger
    job). **Was**: a wait for a peer that would never take it, until the collective timeout (a day for
    `score`); now one line before any wait."""
    from helpers import attiqa_cmd

    cmd = attiqa_cmd("score", photo_dir, "-m", "classical", "--workers", "0", "-o", tmp_path / "s.csv")
    env = launch_env(WORLD_SIZE="2", RANK="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-3000:]
    (line,) = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert line == (
        "error: RANK='2' with WORLD_SIZE=2: each process needs a rank from 0 to 1 — start the command with "
        "torchrun --nproc_per_node 2 -m attiqa.cli ... (it numbers them), or unset WORLD_SIZE to run one "
        "process"
    )


@pytest.mark.serial(reason="a signal or kill timed against torchrun's processes")
def test_a_process_whose_peers_never_join_ends_with_one_line(photo_dir, tmp_path):
    """`WORLD_SIZE=2 RANK=0 MASTER_ADDR=… MASTER_PORT=… attiqa score …` with no second process (a pod of a
    launcher's job, a debugging shell inside it). **Was**: it waited for the peer for the whole collective
    timeout (a day for `score` / `eval`, 30 minutes for `train`) and ignored SIGTERM and Ctrl-C meanwhile
    (the wait is in torch's C++ store; the command's handler never ran): only `kill -9` ended it. Now the
    join has its own timeout (``ATTIQA_JOIN_TIMEOUT`` seconds, here 3; 10 minutes by default, torchrun's own),
    then one line naming the fix."""
    from helpers import attiqa_cmd

    env = launch_env(WORLD_SIZE="2", RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
                     ATTIQA_JOIN_TIMEOUT="3")  # fmt: skip
    cmd = attiqa_cmd("score", photo_dir, "-m", "classical", "--workers", "0", "-o", tmp_path / "s.csv")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)  # a hang fails here
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: rank 0 of 2: the other process(es) did not join within 3 s"), line
    assert "127.0.0.1:" in line and "unset WORLD_SIZE" in line and "ATTIQA_JOIN_TIMEOUT" in line


@pytest.mark.serial(reason="a signal or kill timed against torchrun's processes")
def test_sigterm_while_waiting_for_peers_ends_the_process(photo_dir, tmp_path):
    """SIGTERM (Slurm's scancel, `kill`, `timeout`) to a process waiting at the join for peers that are not
    coming. **Was**: ignored (the command's SIGTERM handler is Python, the wait torch's C++), the process
    kept waiting; now the signal ends it — nothing is written before the join."""
    import signal
    import socket
    import time

    from helpers import attiqa_cmd

    port = free_port()
    env = launch_env(WORLD_SIZE="2", RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cmd = attiqa_cmd("score", photo_dir, "-m", "classical", "--workers", "0", "-o", tmp_path / "s.csv")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        listening = False
        while not listening and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            with socket.socket() as s:  # rank 0 hosts the join's store: it waits there once it listens
                listening = s.connect_ex(("127.0.0.1", port)) == 0
        assert listening, proc.stderr.read() if proc.poll() is not None else "never listened"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not end a process waiting for its peers")
        assert proc.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.slow
@pytest.mark.serial(reason="a signal or kill timed against torchrun's processes")
def test_a_torchrun_pretraining_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path, photos):
    """SIGKILL to rank 1 of `torchrun --nproc_per_node 2 -m attiqa.cli train` mid-run, then the same command
    with --resume under 2 processes: the weights (batch-norm statistics too) of a run never killed, bit for
    bit — each epoch's batches depend only on (seed, epoch, rank), and the state file is rank 0's, atomic.
    (Session 46 checked it by hand; this holds it.)"""
    import os
    import signal
    import time

    from helpers import attiqa_cmd, attiqa_env, rank_pid, write_label_set

    labels = write_label_set(
        tmp_path / "labels", dict(list(photos.items())[:3]), shorter=56, factors=(0.6, 1.4)
    )
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"labels: {labels}\nmodel: {{backbone: tiny, pretrained_backbone: false, head_hidden: 8}}\n"
        "pretrain: {epochs: 400, batch_size: 4, lr: 1.0e-3, crop_size: 48, num_workers: 0, device: cpu, "
        "hflip: true}\n"
    )
    env = {"OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(attiqa_cmd("train", "-c", cfg, "--out-dir", killed, ranks=2), env=attiqa_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    card, deadline = killed / "pretrain" / "last.json", time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if card.exists() and json.loads(card.read_text() or "{}").get("epoch", 0) >= 2:
            break
        time.sleep(0.05)
    victim = rank_pid(proc, 1)
    assert victim is not None and proc.poll() is None
    os.kill(victim, signal.SIGKILL)
    said, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in said.split("torch/distributed/elastic")[0], said[
        -3000:
    ]
    kept = int(json.loads(card.read_text())["epoch"])
    epochs = f"pretrain.epochs={kept + 2}"  # the run goes on past the kill: two epochs more
    res = run_attiqa("train", "-c", cfg, "--out-dir", killed, "--resume", "--set", epochs, ranks=2, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    ref = run_attiqa("train", "-c", cfg, "--out-dir", tmp_path / "ref", "--set", epochs, ranks=2, env=env)
    assert ref.returncode == 0, ref.stderr[-3000:]
    (a, card_a), (b, card_b) = (
        load_model(d / "pretrain" / "model.safetensors") for d in (killed, tmp_path / "ref")
    )
    assert card_a["global_step"] == card_b["global_step"] and card_a["epoch"] == card_b["epoch"] == kept + 2
    assert weights_hash(a) == weights_hash(b), (
        "the resumed run trained other weights than the uninterrupted one"
    )
    assert [h["loss"] for h in card_a["history"]] == [h["loss"] for h in card_b["history"]]
    assert not [p for p in (killed / "pretrain").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_more_processes_than_labelled_images_is_refused_once_not_trained_as_nothing(tmp_path, photos):
    """`torchrun --nproc_per_node 3 -m attiqa.cli train` with a pretraining on 2 labelled images. **Was**:
    each process took 1 image a step, a ranking loss with no pair in it: "loss 0.0000" every epoch, a model
    saved that had learnt nothing, exit 0 — and the warning said "each takes 2 … 6 in all". Now refused
    before training, once, naming the fix."""
    from helpers import write_label_set

    labels = write_label_set(tmp_path / "labels", dict(list(photos.items())[:2]), shorter=56, factors=(1.0,))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"labels: {labels}\nmodel: {{backbone: tiny, pretrained_backbone: false, head_hidden: 8}}\n"
        "pretrain: {epochs: 1, batch_size: 4, crop_size: 48, num_workers: 0, device: cpu}\n"
    )
    res = run_attiqa("train", "-c", cfg, "--out-dir", tmp_path / "run", ranks=3, env={"OMP_NUM_THREADS": "1"})
    assert res.returncode != 0
    ours = res.stderr.split("torch/distributed/elastic")[0]
    assert "Traceback" not in ours and "loss 0.0000" not in res.stdout + ours, res.stderr[-3000:]
    errors = [ln for ln in ours.splitlines() if ln.startswith("error:")]
    assert errors == [
        "error: pretrain: 2 labelled images over 3 processes — a ranking step needs 2 images on each process "
        "(each would take 1 and learn nothing): run at most 1 process (torchrun --nproc_per_node 1), label "
        "more images, or set pretrain.loss: l2"
    ], ours[-3000:]
    assert not (tmp_path / "run" / "pretrain" / "model.safetensors").exists()


def test_the_group_on_a_gpu_node_reduces_cpu_tensors_by_gloo():
    """`torchrun … train` with `device: cpu` on a GPU node (or any CPU tensor in a collective there).
    **Was**: backend "nccl" whenever CUDA was available — no backend for CPU tensors, so the first
    collective failed ("No backend type associated with device type cpu") and was reported as another
    process lost. Now the backend is keyed by device. This machine has no GPU (its NCCL refuses to start
    without one), so the decision is tested as the pure function it is, read by torch's own parser of
    backend strings; the group this machine makes (gloo) runs in every torchrun test here."""
    import torch.distributed as dist

    from attiqa.sharding import backend_for

    def devices(cuda: bool, nccl: bool) -> dict[str, str]:
        return dist.BackendConfig(dist.Backend(backend_for(cuda, nccl))).get_device_backend_map()

    assert devices(cuda=True, nccl=True) == {"cpu": "gloo", "cuda": "nccl"}
    for cuda, nccl in ((True, False), (False, True), (False, False)):  # no GPU, or a torch without NCCL
        assert devices(cuda, nccl)["cpu"] == "gloo"
    assert backend_for(cuda=False, nccl=True) == "gloo"  # this machine's group, as before


def test_more_processes_than_gpus_is_one_line_naming_the_fix(monkeypatch):
    """`torchrun --nproc_per_node 4 … ` on a machine with 2 GPUs. **Was**: torch.cuda.set_device(2)'s
    traceback in the process group's join ("invalid device ordinal"); now the process's device is refused
    in one line naming LOCAL_RANK, the GPUs it sees and both fixes (the join sets a device only for a
    process that has one, so `device: cpu` runs there). No GPU here: the decision is the pure function
    :func:`attiqa.device.process_gpu`, given the count torch.cuda.device_count() would give."""
    from attiqa.device import process_gpu
    from attiqa.errors import ConfigError

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert [process_gpu(r, 2) for r in (0, 1)] == [torch.device("cuda:0"), torch.device("cuda:1")]
    with pytest.raises(ConfigError) as err:
        process_gpu(2, 2)
    assert str(err.value) == (
        "LOCAL_RANK=2: this process sees 2 GPU(s) (torch.cuda.device_count()), one a process — start at most "
        "2 process(es) a machine (torchrun --nproc_per_node 2), or run on the CPU (--device cpu, or device: "
        "cpu in the config)"
    )
    # resolve_device ("auto", "cuda": the local rank's GPU) asks it, as a machine with 2 GPUs answers
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "2")
    monkeypatch.delenv("WORLD_SIZE", raising=False)  # one process: a LOCAL_RANK left in its shell is not its
    assert [resolve_device(spec) for spec in ("auto", "cuda")] == [torch.device("cuda:0")] * 2
    torchrun = {"WORLD_SIZE": "4", "RANK": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    for key, value in torchrun.items():
        monkeypatch.setenv(key, value)  # process 2 of torchrun's 4
    for spec in ("auto", "cuda"):
        with pytest.raises(ConfigError, match="^LOCAL_RANK=2: this process sees 2 GPU"):
            resolve_device(spec)  # was cuda:2, then set_device's traceback
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # a launcher that shows each process one GPU
    with pytest.raises(
        ConfigError, match=r"sees 1 GPU\(s\) \(torch.cuda.device_count\(\); CUDA_VISIBLE_DEVIC"
    ):
        process_gpu(1, 1)


@pytest.mark.slow
@pytest.mark.serial(reason="a signal or kill timed against torchrun's processes")
def test_a_torchrun_clip_labelling_killed_mid_way_resumes_every_image_once(tmp_path, photos, tiny_dir, cli):
    """SIGKILL to rank 1 of `torchrun --nproc_per_node 2 -m attiqa.cli label DIR -t clip:FOLDER -o l.parquet`
    (a tiny random CLIP) once it wrote some batches, then the same command: the killed run's part files are
    whole and hold no image twice, the rerun labels only the rest, and the table holds every image once with
    the labels of one process's uninterrupted run (session 52's audit: ok as it was)."""
    import os
    import signal
    import time

    import pyarrow.parquet as pq
    from helpers import attiqa_cmd, attiqa_env, rank_pid

    from attiqa.labeling import parts_dir

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (name, img) in enumerate(sorted(photos.items()) * 20):  # many: the kill lands mid-way
        img.resize((48, 40)).rotate(9 * i).save(folder / f"{name}_{i:02d}.png")
    n = len(list(folder.iterdir()))
    out = tmp_path / "l.parquet"
    args = (
        "label",
        folder,
        "-t",
        f"clip:{tiny_dir}",
        "--device",
        "cpu",
        "--workers",
        "0",
        "--batch-size",
        "2",
    )
    env = {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(attiqa_cmd(*args, "-o", out, ranks=2), env=attiqa_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    victim, deadline = None, time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(parts_dir(out).glob("rank001-*.parquet"))) >= 2:
            victim = rank_pid(proc, 1)
            break
        time.sleep(0.02)
    assert victim is not None, "rank 1 finished (or never started) before it could be killed"
    os.kill(victim, signal.SIGKILL)
    said, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and not out.exists(), said[-3000:]
    parts = sorted(parts_dir(out).glob("*.parquet"))
    kept = [img for p in parts for img in pq.read_table(p).column("image").to_pylist()]  # each part whole
    assert 4 <= len(kept) < n and len(set(kept)) == len(kept)

    res = subprocess.run(attiqa_cmd(*args, "-o", out, ranks=2), env=attiqa_env(env), capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    ref = tmp_path / "ref.parquet"
    one = cli(*args, "-o", ref)  # one process, in this one
    assert one.returncode == 0, one.stderr[-3000:]
    table, fresh = pq.read_table(out).to_pylist(), {r["image"]: r for r in pq.read_table(ref).to_pylist()}
    assert sorted(r["image"] for r in table) == sorted(fresh) and len(table) == n
    for row in table:  # a batch of 2 on a share is not the one process's batch: float rounding only
        assert row == pytest.approx(fresh[row["image"]], abs=1e-5)
    assert not parts_dir(out).exists() and not list(tmp_path.glob("*.tmp"))


ENDED_COMMAND = """
import threading, time

import typer

from attiqa.cli._common import run_app
from attiqa.errors import AttiqaError

app = typer.Typer()


@app.command()
def main() -> None:
    # a thread still busy as the command ends (a decode thread of a batch), which the interpreter's shutdown
    # joins: the window in which torchrun's agent stops the survivor of a lost rank
    threading.Thread(target=time.sleep, args=(20.0,)).start()
    raise AttiqaError("label: another process of this torchrun job stopped (…) — rerun the same command")


run_app(app)
"""


@pytest.mark.serial(reason="a signal or kill timed against torchrun's processes")
def test_sigterm_after_the_command_ended_adds_no_traceback(tmp_path):
    """Found by the labelling audit above: rank 0 said its one line (a peer lost), then torchrun's agent sent
    it SIGTERM while the interpreter was shutting down. **Was**: the command's SIGTERM handler, still set,
    raised there — "Exception ignored in: <module 'threading'>", a traceback ending in
    `attiqa.cli._common.Terminated` under the one line. Now the handler lives for the command only: after
    it, SIGTERM is the signal's own (the process ends, its output flushed)."""
    import signal
    import sys
    import time

    from helpers import attiqa_env

    script = tmp_path / "ended.py"
    script.write_text(ENDED_COMMAND)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=attiqa_env({}))  # fmt: skip
    try:
        first = proc.stderr.readline() if proc.stderr else ""
        assert first.startswith("error: label: another process"), first
        time.sleep(0.5)  # in the interpreter's shutdown, joining the thread
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=15)  # was: the traceback, then the rest of the thread's 20 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in rest and "Exception ignored" not in rest, rest
    assert proc.returncode == -signal.SIGTERM
