"""The book on a real SLURM: Debian's slurm-wlm and munge, a one-node cluster on localhost started by the fixture.

``smolbook submit --scale smoke --only 07`` runs chapter 07 through ``sbatch`` to completion (its training in the
notebook's kernel). A third job gets the time-limit signal (``scancel --batch --signal=USR1``, what
``--signal=B:USR1@S`` sends): the trainer stops at a checkpoint, the job requeues itself and resumes. A second job runs the same chapter with ``--launcher srun`` (the training cell launches
``srun`` + ``torchrun``, as at full) and is requeued mid-training with ``scontrol requeue``: SLURM sends SIGTERM to
every process of the job, the trainer saves a checkpoint, the job goes back to the queue, and the requeued job
skips nothing it should not, resumes the run from its checkpoint and ends with the first job's final loss.

Timing: the smoke run trains 64 steps in about 1.5 s, too fast to requeue mid-run by the clock. The test freezes
the training rank with SIGSTOP once its first periodic checkpoint exists (as a slow step would hold it) and then
requeues; SLURM's termination sends SIGCONT before SIGTERM, so the rank wakes up into the signal.

The fixture needs root and the packages (``scripts/setup.sh --test`` installs them as root); otherwise the tests
skip and say why. It stops only the daemons it started (by their process ids) and leaves no job behind.
"""
from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from smolbook.cluster import free_port

pytestmark = pytest.mark.slow

SMOLBOOK = str(Path(sys.executable).with_name("smolbook"))
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "srun")
KILL_WAIT = 15


class LocalSlurm:
    """A one-node SLURM cluster on this machine: private munged socket and key, private config, spool and ports,
    so it touches no system SLURM or munge that may also run here. Daemons run in the foreground as children of
    this process, each in its own session, and are stopped by their process ids."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="smolbook-slurm-"))
        self.root.chmod(0o755)
        self.conf = self.root / "slurm.conf"
        self.procs: list[subprocess.Popen] = []
        self.env = dict(os.environ, SLURM_CONF=str(self.conf), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.env.pop("SLURM_JOB_ID", None)

    def log_tail(self) -> str:
        out = []
        for f in sorted((self.root / "log").glob("*.log")):
            out.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(out)

    def start(self) -> None:
        munge = pwd.getpwnam("munge")
        mdir = self.root / "munge"
        mdir.mkdir()
        mdir.chmod(0o755)  # munged: the socket's folder must be searchable by all (clients connect to it)
        key = mdir / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        for p in (mdir, key):
            os.chown(p, munge.pw_uid, munge.pw_gid)
        sock = mdir / "munge.socket"
        for d in ("state", "spool", "log"):
            (self.root / d).mkdir()
        host = socket.gethostname().split(".")[0]
        r = self.root
        self.conf.write_text(f"""ClusterName=smolbooktest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait={KILL_WAIT}
MinJobAge=600
SchedulerParameters=sched_interval=1
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(subprocess.Popen(
            ["munged", "--foreground", f"--socket={sock}", f"--key-file={key}", f"--pid-file={mdir}/munged.pid",
             f"--log-file={mdir}/munged.log", f"--seed-file={mdir}/seed"], user="munge", group="munge", **quiet))
        deadline = time.monotonic() + 20
        while not sock.exists():
            if self.procs[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("munged did not start: " + (mdir / "munged.log").read_text(errors="replace")[-800:]
                                   if (mdir / "munged.log").exists() else "munged did not start")
            time.sleep(0.1)
        for daemon in ("slurmctld", "slurmd"):
            self.procs.append(subprocess.Popen([daemon, "-D", "-f", str(self.conf)], env=self.env, **quiet))
        deadline = time.monotonic() + 60
        while True:
            r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True)
            if r.stdout.strip() == "idle":
                return
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"the SLURM node did not come up (sinfo: {r.stdout.strip()} {r.stderr.strip()})\n"
                                   + self.log_tail())
            time.sleep(0.5)

    def scontrol(self, *args: str) -> str:
        r = subprocess.run(["scontrol", *args], env=self.env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"scontrol {' '.join(args)}: {r.stderr}"
        return r.stdout

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, Restarts, ExitCode, ...)."""
        text = self.scontrol("show", "job", "--oneliner", job_id)
        return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)

    def wait_done(self, job_id: str, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.job(job_id)
            if info["JobState"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
                return info
            if info["JobState"] == "PENDING" and info.get("Reason") == "BeginTime":
                self.scontrol("update", f"JobId={job_id}", "StartTime=now")  # a requeued job waits ~2 min
            time.sleep(1)
        raise AssertionError(f"job {job_id} did not finish in {timeout:.0f}s: {self.job(job_id)}\n{self.log_tail()}")

    def stop(self) -> None:
        """Cancel what is still queued, wait for the jobs' processes to end, then stop our daemons."""
        try:
            ids = subprocess.run(["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True, text=True,
                                 timeout=30).stdout.split()
            if ids:
                subprocess.run(["scancel", *ids], env=self.env, capture_output=True, timeout=30)
                deadline = time.monotonic() + KILL_WAIT + 20
                while time.monotonic() < deadline and subprocess.run(
                        ["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True, text=True).stdout.strip():
                    time.sleep(1)
        except (OSError, subprocess.SubprocessError):
            pass
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=15)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def slurm():
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        pytest.skip(f"SLURM is not installed here (no {', '.join(missing)}): `scripts/setup.sh --test` installs "
                    "slurm-wlm and munge with apt when run as root")
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root (slurmd launches jobs as their user)")
    try:
        pwd.getpwnam("munge")
    except KeyError:
        pytest.skip("no 'munge' user: reinstall the munge package")
    cluster = LocalSlurm()
    try:
        cluster.start()
    except (RuntimeError, OSError) as e:
        cluster.stop()
        pytest.skip(f"the local SLURM cluster did not start: {e}")
    yield cluster
    cluster.stop()


def _submit(slurm: LocalSlurm, out: Path, *extra: str) -> str:
    r = subprocess.run([SMOLBOOK, "submit", "--scale", "smoke", "--only", "07", "--output", str(out),
                        "--signal-seconds", "30", *extra], env=slurm.env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"submitted job (\d+)", r.stdout)
    assert m, r.stdout
    return m.group(1)


def _find_rank(job_id: str, timeout: float = 120) -> int:
    """The training process of a job: ``python -m smolbook.train run SPEC --in-process`` under torchrun."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"--in-process" not in cmd or b"smolbook.train" not in cmd:
                    continue
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"SLURM_JOB_ID={job_id}".encode() in env:
                return int(pid)
        time.sleep(0.05)
    raise AssertionError(f"no training rank of job {job_id} appeared")


def _final_loss(run: Path) -> tuple[list[int], float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    train = [r for r in rows if r["kind"] == "train"]
    return [r["step"] for r in train], train[-1]["loss"]


def test_submit_runs_and_a_requeued_job_resumes_to_the_same_loss(slurm, tmp_path):
    plain, requeued, timed = tmp_path / "plain", tmp_path / "requeued", tmp_path / "timed"
    job_a = _submit(slurm, plain)
    job_b = _submit(slurm, requeued, "--launcher", "srun")
    job_c = _submit(slurm, timed)  # queued until a CPU is free: the node has 2
    run_b = requeued / "07_pretraining" / "pretrain"

    # freeze the rank of job B at its first periodic checkpoint, then requeue the job
    rank = _find_rank(job_b)
    deadline = time.monotonic() + 120
    while not (run_b / "checkpoints" / "step-0000016").is_dir():
        assert time.monotonic() < deadline, f"job {job_b} wrote no checkpoint: {slurm.job(job_b)}"
        time.sleep(0.005)
    os.kill(rank, signal.SIGSTOP)
    assert not (run_b / "final").exists()
    slurm.scontrol("requeue", job_b)

    # job C gets the time-limit signal (--signal=B:USR1 sends it to the batch shell, as scancel does here) while its
    # notebook starts: the stop file is there when training begins, the trainer saves and stops, the job requeues
    log_c = timed / "slurm" / f"smolbook-smoke-{job_c}.out"
    deadline = time.monotonic() + 180
    while not (log_c.is_file() and "(restart 0)" in log_c.read_text()):  # its traps are set
        assert time.monotonic() < deadline, f"job {job_c} did not start: {slurm.job(job_c)}"
        time.sleep(0.2)
    r = subprocess.run(["scancel", "--batch", "--signal=USR1", job_c], env=slurm.env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    a = slurm.wait_done(job_a, timeout=240)
    b = slurm.wait_done(job_b, timeout=240)
    c = slurm.wait_done(job_c, timeout=240)
    log_b = (requeued / "slurm" / f"smolbook-smoke-{job_b}.out").read_text()
    assert a["JobState"] == "COMPLETED" and a["ExitCode"] == "0:0", (a, slurm.log_tail())
    assert b["JobState"] == "COMPLETED" and b["ExitCode"] == "0:0", (b, log_b[-3000:])
    assert b["Restarts"] == "1" and a["Restarts"] == "0"
    assert "(restart 1)" in log_b and "SIGTERM" in log_b and "torchrun" in log_b

    # the second attempt resumed from the checkpoint the trainer saved on SIGTERM, mid-run
    resumes = json.loads((run_b / "run.json").read_text())["resumes"]
    assert len(resumes) == 1 and resumes[0]["slurm_job"] == job_b and resumes[0]["slurm_restart"] == "1", resumes
    assert 17 <= resumes[0]["step"] < 64, resumes  # the checkpoint SIGTERM made (the periodic one is at 16)
    for out in (plain, requeued):
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["notebooks"]["07_pretraining"]["status"] == "ok"
    steps_a, loss_a = _final_loss(plain / "07_pretraining" / "pretrain")
    steps_b, loss_b = _final_loss(run_b)
    assert steps_a == steps_b == list(range(1, 65))
    print(f"job {job_a}: final loss {loss_a!r}; job {job_b}: requeued, resumed from {resumes[0]['checkpoint']}, "
          f"final loss {loss_b!r}")
    assert abs(loss_a - loss_b) <= 1e-6, (loss_a, loss_b)

    # the time-limit path: checkpoint on the stop file, the job requeued itself, resumed, same loss
    text_c = log_c.read_text()
    assert c["JobState"] == "COMPLETED" and c["ExitCode"] == "0:0" and c["Restarts"] == "1", (c, text_c[-3000:])
    assert "time limit near" in text_c and "requeueing job" in text_c and "(restart 1)" in text_c
    resumes_c = json.loads((timed / "07_pretraining" / "pretrain" / "run.json").read_text())["resumes"]
    assert len(resumes_c) == 1 and 1 <= resumes_c[0]["step"] < 64, resumes_c
    steps_c, loss_c = _final_loss(timed / "07_pretraining" / "pretrain")
    print(f"job {job_c}: stopped by its time-limit signal, resumed from {resumes_c[0]['checkpoint']}, "
          f"final loss {loss_c!r}")
    assert steps_c == steps_a and abs(loss_a - loss_c) <= 1e-6, (loss_a, loss_c)
