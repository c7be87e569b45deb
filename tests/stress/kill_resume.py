#!/usr/bin/env python3
"""Kill -9 / resume stress loop for tidemark (mirrors tests/cli_crash.rs kill_and_resume).

Usage:
  nice -n 10 python3 tests/stress/kill_resume.py BINARY SCENARIO [--iters N] [--hours H] [--out DIR]
                                 [--seed S] [--keys-variant default|test|mix] [--keep-all]
                                 [--pin P] [--golden] [--batch-sizes 16,128,1024]

  e.g.  nice -n 10 python3 tests/stress/kill_resume.py target/release/tidemark ab --iters 400 --hours 3
        nice -n 10 python3 tests/stress/kill_resume.py target/release/tidemark ab --pin 0.5 --golden

  BINARY    path of the tidemark binary to test (e.g. target/release/tidemark)
  SCENARIO  a : the bug report's: gen --partitions 6 --events 1500000 --late-frac 0.02
                --late-extra 3s (+ malformed lines), session:200ms, delay 100ms,
                lateness 2s, --workers 2, --checkpoint-every 5s, 12 kills
            b : the flaky test's: gen --partitions 4 --keys 300 --rate 5 --events 120000
                --late-frac 0.02 --late-extra 3s, sliding:4s/1s, delay 200ms, lateness 1s,
                --emit updates, --workers 3/1 alternating, --checkpoint-every 1s, 10 kills
            c : extra, yield-heavy: scenario b's input (20k events), sliding:4s/100ms updates
                (80 rows per record: the window operator hands rows on in 64 Ki chunks
                constantly), workers 3/1/2, --checkpoint-every 1s, 10 kills
            d : extra: sessions as in a on 300k events (300 keys, rate 5), --checkpoint-every
                50ms (many checkpoints, unchanged states reused), workers 2/1/3, 12 kills
            scenarios may be combined, "ab", to alternate them one iteration at a time.
  --keys-variant (scenario a only): "default" = gen's defaults (10 keys, rate 1) as in
            the report's command; "test" = --keys 300 --rate 5 as tests/cli_crash.rs's
            input(); "mix" (default) picks one at random per iteration.

Every iteration: fresh random gen seed, reference run without checkpoints, up to K runs of
the same command with --checkpoint-dir killed with SIGKILL at random moments (1/4 of them
within 60 ms, the rest uniform over 1.2x the reference's wall time), a final run to
completion, then a byte comparison of results/late/dead-letter files with the reference.
A failing iteration's directory is kept under OUT/fail-*/ with the input, the reference,
the outputs, checkpoint dir, per-run snapshots (run-NN/: outputs + ckpt copy + stderr +
`tidemark inspect`), and case.json (commands, kill moments, seeds).  Passing iterations
are deleted (unless --keep-all).  OUT/log.jsonl gets one line per iteration.
  --pin P   with probability P, a checkpointed run is started under `taskset -c 0` (all its
            threads on one CPU: heavy preemption, other interleavings); default 0.
  --golden  also run the checkpointed job once uninterrupted keeping every checkpoint, and
            check every checkpoint left after each killed run (run-NN/ckpt) against the golden
            checkpoint at the same frontier: positions, committed output lengths and digests,
            and the record counters must be equal (a checkpoint is a function of its cut).
  --batch-sizes  comma list; each checkpointed run picks one at random (default: none given,
            the engine's default 1024). Outputs must not depend on it.
Runs strictly one process at a time.
"""
import argparse, hashlib, json, os, random, shutil, signal, subprocess, sys, time

OUTPUTS = ["results.jsonl", "late.jsonl", "dead.jsonl"]


def sh(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def gen_input(binary, d, scen, seed, keys_variant):
    inp = os.path.join(d, "in")
    if scen == "a":
        args = [binary, "gen", "--partitions", "6", "--events", "1500000",
                "--late-frac", "0.02", "--late-extra", "3s"]
        if keys_variant == "test":
            args += ["--keys", "300", "--rate", "5"]
    elif scen == "c":
        args = [binary, "gen", "--partitions", "4", "--keys", "300", "--late-frac", "0.02",
                "--late-extra", "3s", "--rate", "5", "--events", "20000"]
    elif scen == "d":
        args = [binary, "gen", "--partitions", "6", "--events", "300000", "--late-frac", "0.02",
                "--late-extra", "3s", "--keys", "300", "--rate", "5"]
    else:
        args = [binary, "gen", "--partitions", "4", "--keys", "300", "--late-frac", "0.02",
                "--late-extra", "3s", "--rate", "5", "--events", "120000"]
    args += ["--seed", str(seed), "--out", inp]
    r = sh(args)
    if r.returncode != 0:
        raise RuntimeError("gen failed: " + r.stderr.decode())
    names = sorted(os.listdir(inp))
    for i, n in enumerate(names[:2]):
        with open(os.path.join(inp, n), "a") as f:
            f.write('{"key":"bad%d","ts":"not a time"}\n' % i)
            f.write("not json at all\n")
    return inp, args


def job_args(binary, inp, out, job):
    a = [binary, "run", "--quiet", "--input", inp]
    for flag, f in zip(["--output", "--late", "--dead-letter"], OUTPUTS):
        a += [flag, os.path.join(out, f)]
    return a + job


def read_outputs(out):
    res = []
    for f in OUTPUTS:
        p = os.path.join(out, f)
        res.append(open(p, "rb").read() if os.path.exists(p) else b"")
    return res


def run_killed(args, after_ms, errpath):
    with open(errpath, "wb") as err:
        t0 = time.monotonic()
        child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        completed = None
        while True:
            rc = child.poll()
            if rc is not None:
                completed = rc
                break
            if (time.monotonic() - t0) * 1000 >= after_ms:
                child.send_signal(signal.SIGKILL)
                child.wait()
                break
            time.sleep(0.002)
        el = (time.monotonic() - t0) * 1000
    return completed, el


def snapshot(d, i, out, ckpt, binary, errpath):
    s = os.path.join(d, "run-%02d" % i)
    os.makedirs(s, exist_ok=True)
    for f in OUTPUTS:
        p = os.path.join(out, f)
        if os.path.exists(p):
            if os.path.getsize(p) < 30 << 20:
                shutil.copy2(p, os.path.join(s, f))
            else:  # too big to keep per run: its length and digest
                h = hashlib.sha256(open(p, "rb").read()).hexdigest()
                open(os.path.join(s, f + ".sha256"), "w").write("%d %s\n" % (os.path.getsize(p), h))
    if os.path.isdir(ckpt):
        try:
            shutil.copytree(ckpt, os.path.join(s, "ckpt"))
        except Exception as e:  # a concurrent tmp file; not fatal
            open(os.path.join(s, "ckpt-copy-error"), "w").write(str(e))
        r = sh([binary, "inspect", ckpt])
        open(os.path.join(s, "inspect.txt"), "wb").write(r.stdout + r.stderr)
    shutil.copy2(errpath, os.path.join(s, "stderr.txt"))


COUNTERS = ["records", "dead_letters", "late_dropped", "late_applied", "unassigned",
            "windows_emitted", "corrections"]


def manifests(ckdir):
    res = {}
    if not os.path.isdir(ckdir):
        return res
    for n in sorted(os.listdir(ckdir)):
        m = os.path.join(ckdir, n, "MANIFEST")
        try:
            j, _ = json.JSONDecoder().raw_decode(open(m).read())  # a "crc32 N" line follows
        except Exception:
            continue
        res.setdefault(j["frontier"], []).append((n, j))
    return res


def summarize(j):
    return {"positions": j["positions"], "outputs": j["outputs"],
            "counters": {k: j.get("counters", {}).get(k) for k in COUNTERS}}


def golden_check(binary, d, inp, job, every, workers):
    g = os.path.join(d, "golden")
    os.makedirs(g, exist_ok=True)
    ck = os.path.join(g, "ckpt")
    r = sh(job_args(binary, inp, g, job + ["--checkpoint-dir", ck, "--checkpoint-every", every,
                                             "--keep-checkpoints", "100000", "--workers", workers]))
    gold = {f: summarize(v[0][1]) for f, v in manifests(ck).items()}
    problems = []
    for rd in sorted(x for x in os.listdir(d) if x.startswith("run-")):
        for f, lst in manifests(os.path.join(d, rd, "ckpt")).items():
            for (n, j) in lst:
                if f not in gold:
                    continue  # a cut the golden run skipped (frontier jumped over it)
                mine = summarize(j)
                for k in ("positions", "outputs", "counters"):
                    if mine[k] != gold[f][k]:
                        problems.append({"run": rd, "ckpt": n, "frontier": f, "field": k,
                                         "got": mine[k], "golden": gold[f][k]})
    return r.returncode, len(gold), problems


def iteration(binary, base, scen, it, rng, keys_variant, keep_all, pin=0.0, batch_sizes=None,
              golden=False):
    seed = rng.randrange(1, 1 << 31)
    kv = keys_variant
    if scen == "a" and kv == "mix":
        kv = rng.choice(["default", "test"])
    d = os.path.join(base, "cur-%s-%05d" % (scen, it))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    inp, gen_cmd = gen_input(binary, d, scen, seed, kv)
    if scen == "a":
        job = ["--window", "session:200ms", "--delay", "100ms", "--lateness", "2s"]
        kills, workers, every, final_workers = 12, ["2"], "5s", ["--workers", "2"]
    elif scen == "c":
        # many rows per record: the window operator yields (64 Ki rows) all the time
        job = ["--window", "sliding:4s/100ms", "--delay", "200ms", "--lateness", "1s",
               "--emit", "updates"]
        kills, workers, every, final_workers = 10, ["3", "1", "2"], "1s", []
    elif scen == "d":
        # sessions with a cut every 50 ms: many checkpoints, reports reusing a state
        job = ["--window", "session:200ms", "--delay", "100ms", "--lateness", "2s"]
        kills, workers, every, final_workers = 12, ["2", "1", "3"], "50ms", ["--workers", "2"]
    else:
        job = ["--window", "sliding:4s/1s", "--delay", "200ms", "--lateness", "1s",
               "--emit", "updates"]
        kills, workers, every, final_workers = 10, ["3", "1"], "1s", []
    ref = os.path.join(d, "reference")
    os.makedirs(ref)
    refjob = job + (["--workers", "2"] if scen == "a" else [])
    t0 = time.monotonic()
    r = sh(job_args(binary, inp, ref, refjob))
    took = (time.monotonic() - t0) * 1000
    if r.returncode != 0:
        raise RuntimeError("reference failed: " + r.stderr.decode())
    expected = read_outputs(ref)
    out = os.path.join(d, "out")
    os.makedirs(out)
    ckpt = os.path.join(d, "ckpt")
    moments, runs = [], []
    resumed = 0
    span = int(took) * 6 // 5 + 1
    for i in range(kills):
        with_ = job + ["--checkpoint-dir", ckpt, "--checkpoint-every", every,
                       "--workers", workers[i % len(workers)]]
        if batch_sizes:
            with_ += ["--batch-size", str(rng.choice(batch_sizes))]
        args = job_args(binary, inp, out, with_)
        pinned = rng.random() < pin
        if pinned:
            args = ["taskset", "-c", "0"] + args
        after = rng.randrange(60) if rng.randrange(4) == 0 else rng.randrange(span)
        moments.append(after)
        errpath = os.path.join(d, "stderr-%02d.txt" % i)
        completed, el = run_killed(args, after, errpath)
        err = open(errpath, "rb").read().decode(errors="replace")
        res = "resuming from checkpoint" in err
        resumed += res
        runs.append({"i": i, "workers": workers[i % len(workers)], "kill_after_ms": after,
                     "pinned": pinned, "args": args,
                     "elapsed_ms": round(el, 1), "completed_rc": completed, "resumed": res,
                     "stderr": err[-2000:]})
        snapshot(d, i, out, ckpt, binary, errpath)
        if completed is not None:
            if completed != 0:
                runs[-1]["FAILED"] = True
            break
    with_ = job + ["--checkpoint-dir", ckpt, "--checkpoint-every", every] + final_workers
    final_args = job_args(binary, inp, out, with_)
    last = sh(final_args)
    open(os.path.join(d, "stderr-final.txt"), "wb").write(last.stderr)
    got = read_outputs(out)
    diffs = [OUTPUTS[k] for k in range(3) if got[k] != expected[k]]
    gold_problems = []
    if golden:
        grc, ng, gold_problems = golden_check(binary, d, inp, job, every, workers[0])
        if gold_problems:
            diffs.append("checkpoint-mismatch")
        json.dump(gold_problems, open(os.path.join(d, "golden-problems.json"), "w"), indent=1)
    bad_rc = last.returncode != 0 or any(r.get("FAILED") for r in runs)
    # tests/cli_crash.rs's other assertion (not about the outputs): resumed >= wanted
    wanted = min(max(len(moments) - 1, 1), 2)
    rec = {"scenario": scen, "iter": it, "gen_seed": seed, "keys_variant": kv,
           "test_resume_assertion_would_fail": resumed < wanted,
           "ref_ms": round(took), "moments": moments, "resumed": resumed,
           "final_rc": last.returncode, "diffs": diffs, "bad_rc": bad_rc,
           "sizes": {OUTPUTS[k]: [len(got[k]), len(expected[k])] for k in range(3)},
           "ts": time.strftime("%H:%M:%S")}
    case = dict(rec, gen_cmd=gen_cmd, reference_cmd=job_args(binary, inp, ref, refjob),
                final_cmd=final_args, runs=runs, final_stderr=last.stderr.decode()[-2000:])
    json.dump(case, open(os.path.join(d, "case.json"), "w"), indent=1)
    if diffs or bad_rc:
        os.rename(d, os.path.join(base, "fail-%s-%05d" % (scen, it)))
    elif not keep_all:
        shutil.rmtree(d)
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("scenario")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--out", default="target/kill-resume-stress")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keys-variant", default="mix")
    ap.add_argument("--keep-all", action="store_true")
    ap.add_argument("--pin", type=float, default=0.0)
    ap.add_argument("--batch-sizes", default=None)
    ap.add_argument("--golden", action="store_true")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    os.makedirs(a.out, exist_ok=True)
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    log = open(os.path.join(a.out, "log.jsonl"), "a")
    start = time.monotonic()
    counts = {}
    n = 0
    scens = list(a.scenario)
    while n < a.iters and time.monotonic() - start < a.hours * 3600:
        scen = scens[n % len(scens)]
        it = int(time.time() * 1000) % 100000
        bs = [int(x) for x in a.batch_sizes.split(",")] if a.batch_sizes else None
        rec = iteration(binary, a.out, scen, it, rng, a.keys_variant, a.keep_all, a.pin, bs,
                        a.golden)
        rec["loop_seed"] = seed
        log.write(json.dumps(rec) + "\n")
        log.flush()
        c = counts.setdefault(scen, [0, 0])
        c[0] += 1
        c[1] += bool(rec["diffs"] or rec["bad_rc"])
        n += 1
        print("%s %s it=%d diffs=%s resumed=%d moments=%s counts=%s" % (
            rec["ts"], scen, it, rec["diffs"], rec["resumed"], rec["moments"], counts),
            flush=True)
    print("done", counts)


if __name__ == "__main__":
    main()
