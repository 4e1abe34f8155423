#!/usr/bin/env python3
"""Compile every CUDA kernel variant with nvcc and report ptxas resource usage.

For each (source, defines, kernel names) of ``gpuconv.cuda._build.variants()`` and each target
architecture, prepend the defines header to the source, compile to a cubin with
``nvcc -std=c++17 -arch=sm_XX -cubin -Xptxas -v -Ikernels_cuda`` and parse ptxas's report per
kernel: registers, spill stores / loads, stack frame, shared memory.  Prints one compact table.

``--nvrtc LIBNVRTC`` compiles the same text through NVRTC instead, with the loader's own options
and those CuPy adds (CuPy compiles with NVRTC at run time; any compiler message fails the check).

Exit status: 1 on a compile error or a kernel missing from the cubin; a spill or a non-zero stack
frame in a hot kernel (``_build.HOT_KERNEL_PREFIXES``) is a WARNING, an error with ``--strict``.
Needs only python3 and nvcc (no numpy, no GPU).  Run from anywhere: ``python3 ci/check_kernels.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KERNELS = REPO / "kernels_cuda"
ARCHS = ("sm_80", "sm_90")


def load_build():
    """gpuconv/cuda/_build.py by path (gpuconv/__init__ imports numpy; this must not)."""
    path = REPO / "gpuconv" / "cuda" / "_build.py"
    spec = importlib.util.spec_from_file_location("gpuconv_cuda_build", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses / typing look the module up by name
    spec.loader.exec_module(mod)
    return mod


def label(source: str, defines: dict) -> str:
    if "KH" in defines or "KW" in defines:
        return f"{Path(source).stem}[{defines.get('KH', '?')}x{defines.get('KW', '?')}]"
    if "IG_BM" in defines:
        return f"{Path(source).stem}[{defines['IG_BM']}x{defines['IG_BN']}]"
    if defines.get("DIRECT_GENERIC_ONLY"):
        return f"{Path(source).stem}[generic]"
    return Path(source).stem


_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '([^']+)'")
_PROPS = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas(text: str) -> dict:
    """{kernel: {regs, spill_st, spill_ld, stack, smem}} from ``-Xptxas -v`` output."""
    out: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        m = _ENTRY.search(line) or _PROPS.search(line)
        if m:
            current = m.group(1)
            out.setdefault(
                current, {"regs": 0, "spill_st": 0, "spill_ld": 0, "stack": 0, "smem": 0}
            )
            continue
        if current is None:
            continue
        m = _FRAME.search(line)
        if m:
            out[current].update(
                stack=int(m.group(1)), spill_st=int(m.group(2)), spill_ld=int(m.group(3))
            )
            continue
        m = _USED.search(line)
        if m:
            out[current]["regs"] = int(m.group(1))
            s = _SMEM.search(line)
            out[current]["smem"] = int(s.group(1)) if s else 0
    return out


def compile_one(nvcc: str, build, source: str, defines: dict, arch: str, tmp: Path, job: int):
    """(ok, ptxas report, nvcc output, seconds, command) for one variant on one architecture."""
    src_path = KERNELS / source
    name = f"job{job:03d}_" + re.sub(r"[^A-Za-z0-9_]", "_", f"{label(source, defines)}_{arch}")
    cu = tmp / f"{name}.cu"
    cu.write_text(
        build.defines_header(defines) + f'#line 1 "{src_path.as_posix()}"\n' + src_path.read_text()
    )
    cmd = [
        nvcc,
        "-std=c++17",
        f"-arch={arch}",
        "-cubin",
        "-Xptxas",
        "-v",
        f"-I{KERNELS}",
        "-o",
        str(tmp / f"{name}.cubin"),
        str(cu),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    return proc.returncode == 0, parse_ptxas(text), text, dt, " ".join(cmd)


#: what CuPy 14 appends to a RawModule's options before NVRTC compiles it (cupy/cuda/compiler.py,
#: non-jitify path): the check compiles what a user's GPU compiles
CUPY_ADDS = ("--device-as-default-execution-space", "-ftz=true")


def nvrtc_check(lib_path: str, archs, jobs: int) -> int:
    """Compile every variant through NVRTC (what CuPy compiles with at run time) from ``lib_path``
    with the loader's own source text and options; needs gpuconv importable (numpy)."""
    import ctypes

    sys.path.insert(0, str(REPO))
    from gpuconv.cuda import _build, _loader

    lib = ctypes.CDLL(lib_path)
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def compile_nvrtc(code: str, options: list[str]) -> tuple[int, str]:
        prog = ctypes.c_void_p()
        r = lib.nvrtcCreateProgram(ctypes.byref(prog), code.encode(), b"kernel.cu", 0, None, None)
        if r:
            return r, lib.nvrtcGetErrorString(r).decode()
        opts = (ctypes.c_char_p * len(options))(*(o.encode() for o in options))
        r = lib.nvrtcCompileProgram(prog, len(options), opts)  # releases the GIL (ctypes)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
        return r, log.value.decode(errors="replace").strip()

    work = [
        (source, defines, arch)
        for source, defines, _ in _build.variants()
        for arch in archs
    ]  # fmt: skip
    t0 = time.perf_counter()
    errors, logs = [], []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futs = [
            (source, defines, arch, pool.submit(
                compile_nvrtc,
                _loader.assemble_source(source, defines, KERNELS),
                [*_loader.module_options(KERNELS), *CUPY_ADDS, f"-arch={arch}"],
            ))
            for source, defines, arch in work
        ]  # fmt: skip
        for source, defines, arch, fut in futs:
            r, log = fut.result()
            what = f"{label(source, defines)} {arch}"
            if r:
                errors.append(f"{what}: NVRTC error {r}\n{log}")
            elif log:
                logs.append(f"{what}: {log}")
    print(
        f"NVRTC {major.value}.{minor.value}: {len(work)} compiles ({len(work) // len(archs)} "
        f"variants x {len(archs)} archs) in {time.perf_counter() - t0:.1f} s, "
        f"{len(errors)} failed, {len(logs)} with a compiler message"
    )
    _report(logs, errors)
    return 1 if errors or logs else 0


def _report(warnings: list[str], errors: list[str]) -> None:
    for w in warnings:
        print(f"WARNING: {w}")
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one variant per source file")
    ap.add_argument("--strict", action="store_true", help="spills / stack in hot kernels fail")
    ap.add_argument("--jobs", type=int, default=2, help="parallel nvcc processes (default 2)")
    ap.add_argument("--arch", action="append", help="override the architectures (repeatable)")
    ap.add_argument("--nvcc", default=os.environ.get("NVCC", "nvcc"))
    ap.add_argument(
        "--nvrtc",
        metavar="LIBNVRTC",
        help="compile through this libnvrtc instead (CuPy's run-time compiler; needs numpy)",
    )
    args = ap.parse_args(argv)
    if args.nvrtc:
        return nvrtc_check(args.nvrtc, tuple(args.arch or ("compute_90",)), args.jobs)

    nvcc = shutil.which(args.nvcc) or args.nvcc
    if not shutil.which(nvcc):
        print(f"ERROR: nvcc not found ({args.nvcc})", file=sys.stderr)
        return 1
    build = load_build()
    variants = build.variants()
    if args.quick:
        seen, picked = set(), []
        for v in variants:
            if v[0] not in seen:
                seen.add(v[0])
                picked.append(v)
        variants = picked
    archs = tuple(args.arch) if args.arch else ARCHS

    jobs = [(v, arch) for v in variants for arch in archs]
    t_start = time.perf_counter()
    errors, warnings = [], []
    rows: dict[tuple[str, str], dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="check_kernels_") as td:
        tmp = Path(td)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futs = [
                (v, arch, pool.submit(compile_one, nvcc, build, v[0], v[1], arch, tmp, i))
                for i, (v, arch) in enumerate(jobs)
            ]
            for (source, defines, names), arch, fut in futs:
                ok, report, text, dt, cmd = fut.result()
                lab = label(source, defines)
                if not ok:
                    errors.append(f"{lab} {arch}: compile failed\n  {cmd}\n{text.rstrip()}")
                    continue
                for kname in names:
                    r = report.get(kname)
                    if r is None:
                        errors.append(f"{lab} {arch}: kernel {kname} not in the cubin")
                        continue
                    rows.setdefault((lab, kname), {})[arch] = r
                    hot = kname.startswith(tuple(build.HOT_KERNEL_PREFIXES))
                    if hot and (r["spill_st"] or r["spill_ld"] or r["stack"]):
                        warnings.append(
                            f"{lab} {kname} {arch}: {r['spill_st']} B spill stores, "
                            f"{r['spill_ld']} B spill loads, {r['stack']} B stack frame"
                        )
    elapsed = time.perf_counter() - t_start

    # ---- table: one row per (variant, kernel), one column group per architecture ----
    def cell(r):
        if r is None:
            return "-"
        spill = (
            "" if not (r["spill_st"] or r["spill_ld"]) else f" sp{r['spill_st']}/{r['spill_ld']}"
        )
        stack = "" if not r["stack"] else f" st{r['stack']}"
        return f"{r['regs']:3d}r {r['smem']:6d}B{spill}{stack}"

    w_lab = max([len(k[0]) for k in rows] + [7])
    w_ker = max([len(k[1]) for k in rows] + [6])
    w_cell = max([len(cell(r)) for d in rows.values() for r in d.values()] + [12])
    head = f"{'variant':<{w_lab}}  {'kernel':<{w_ker}}  " + "  ".join(
        f"{a:<{w_cell}}" for a in archs
    )
    print(head)
    print("-" * len(head))
    for (lab, kname), d in rows.items():
        print(
            f"{lab:<{w_lab}}  {kname:<{w_ker}}  "
            + "  ".join(f"{cell(d.get(a)):<{w_cell}}" for a in archs)
        )
    print(
        "(r = registers, B = static shared memory, spST/LD = spill store/load bytes, "
        "stN = stack frame bytes)"
    )
    for a in archs:
        regs = [d[a]["regs"] for d in rows.values() if a in d]
        spills = sum(1 for d in rows.values() if a in d and (d[a]["spill_st"] or d[a]["spill_ld"]))
        stacks = sum(1 for d in rows.values() if a in d and d[a]["stack"])
        if regs:
            print(
                f"{a}: {len(regs)} kernels, registers {min(regs)}-{max(regs)}, "
                f"{spills} with spills, {stacks} with a stack frame"
            )
    print(
        f"{len(jobs)} compiles ({len(variants)} variants x {len(archs)} archs, "
        f"{args.jobs} workers) in {elapsed:.1f} s"
    )

    _report(warnings, errors)
    if errors:
        return 1
    if warnings and args.strict:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
