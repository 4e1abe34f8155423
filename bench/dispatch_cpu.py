"""How good are the dispatcher's estimates? Measured time over estimate per algorithm, and regret.

For a grid of problems (1-D, 2-D, 3-D, single and multi-channel, float32 and float64) every
algorithm that supports the problem and is estimated within SKIP of the best is timed (median of
repeats after a warm-up, random inputs, each result checked against the fft result first). The
script prints, per problem, measured/estimated for each algorithm and the regret of 'auto' (time of
the chosen algorithm over the fastest measured), then the median ratio per algorithm: the factor by
which that algorithm's constants in gpuconv/_costs.py are off on this machine.

    PYTHONPATH=. python bench/dispatch_cpu.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np

from gpuconv import dispatch
from gpuconv._bench import _time
from gpuconv._spec import ConvSpec

SKIP = 30.0


def grid(quick: bool):
    f32, f64 = np.float32, np.float64
    same2 = lambda n, k, dt, **kw: ConvSpec(  # noqa: E731
        in_shape=(n, n),
        kernel_shape=(k, k),
        pad_lo=k // 2,
        pad_hi=(k - 1) // 2,
        flip=True,
        dtype=dt,
        **kw,
    )
    problems = [
        same2(n, k, dt) for n in (256, 1024) for k in (3, 5, 9, 17, 33) for dt in (f32, f64)
    ]
    problems += [same2(2048, k, f32) for k in (3, 7, 11, 15, 31)]
    problems += [
        ConvSpec(in_shape=(n,), kernel_shape=(k,), pad_lo=k - 1, pad_hi=k - 1, flip=True, dtype=dt)
        for n in (10_000, 1_000_000)
        for k in (8, 64, 512)
        for dt in (f32, f64)
    ]
    problems += [
        ConvSpec(
            in_shape=(64, 64, 64), kernel_shape=(k,) * 3, pad_lo=k // 2, pad_hi=k // 2, dtype=f32
        )
        for k in (3, 5, 9)
    ]
    problems += [
        same2(56, 3, f32, batch=8, c_in=64, c_out=64),
        same2(28, 3, f32, batch=8, c_in=128, c_out=128),
    ]
    return problems[::3] if quick else problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ratios: dict[str, list[float]] = {}
    regrets = []
    for spec in grid(args.quick):
        x = rng.standard_normal(spec.x_shape).astype(spec.dtype)
        w = rng.standard_normal(spec.w_shape).astype(spec.dtype)
        plan = dispatch.choose(spec, w)
        best_est = min(plan.estimates.values())
        ref = dispatch.execute(spec, x, w, "fft")
        tol = 1e-3 * float(np.abs(ref).max())
        times = {}
        for name, est in plan.estimates.items():
            if est > SKIP * best_est:
                continue
            fn = lambda name=name: dispatch.execute(spec, x, w, name)  # noqa: E731
            err = float(np.abs(fn() - ref).max())
            assert err <= tol, (name, spec, err)
            times[name] = _time(fn, args.repeat) / 1e3
            ratios.setdefault(name, []).append(times[name] / est)
        fastest = min(times, key=times.get)
        regret = times[plan.algorithm] / times[fastest] if plan.algorithm in times else float("nan")
        regrets.append(regret)
        label = f"{spec.ndim}-D {'x'.join(map(str, spec.in_shape))} k={spec.kernel_shape[0]} {spec.dtype}"
        if spec.c_in > 1:
            label += f" b{spec.batch} {spec.c_in}->{spec.c_out}"
        cells = "  ".join(
            f"{n}={times[n] * 1e3:.2f}ms(x{times[n] / plan.estimates[n]:.2f})" for n in times
        )
        print(f"{label:<38} auto={plan.algorithm:<11} regret={regret:.2f}  {cells}", flush=True)
    print("\nmeasured / estimated, median per algorithm:")
    for name, r in ratios.items():
        print(f"  {name:<12} {np.median(r):.2f}  (n={len(r)}, min {min(r):.2f}, max {max(r):.2f})")
    regrets = np.array(regrets)
    print(f"\nregret of auto: median {np.nanmedian(regrets):.2f}, worst {np.nanmax(regrets):.2f}")


if __name__ == "__main__":
    main()
