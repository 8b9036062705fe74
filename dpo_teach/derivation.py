r"""A SymPy step checker for derivations (used by chapters 1 to 5).

A derivation is a chain of steps. Each step claims that a new expression equals the previous
one (or that a new equation is equivalent to the previous one), with a short reason. The checker
*proves* each claim with SymPy, using only rewrites that are valid under the symbols' declared
assumptions (``positive=True`` for probabilities, beta and Z(x)); it never calls
``force=True`` and never uses SymPy's numeric ``equals``. A claim it cannot prove raises
:class:`StepError` showing the residual.

A numeric spot-check is a separate, weaker kind of evidence: :func:`check_numeric` evaluates both
sides at random points and says so ("checked numerically at 20 random points"). A derivation shows
for every step which kind of evidence it has.

Sums over a symbolic index (``Sum(pi[y]*r[y], (y, 1, n))``) are handled by linearity: summands are
expanded, split term by term, and factors that do not depend on the index are pulled out. Facts
such as the normalization :math:`\sum_y \pi(y) = 1` are passed as ``given={Sum(pi[y], ...): 1}``
and are shown with the step.
"""
from __future__ import annotations

import contextlib
import random
import signal
import threading
from dataclasses import dataclass, field

import sympy as sp

__all__ = ["StepError", "Proof", "check_step", "check_numeric", "Derivation", "is_zero"]


class StepError(AssertionError):
    """A step that the checker could not prove (or that a numeric check refuted)."""

    def __init__(self, message, before=None, after=None, residual=None):
        super().__init__(message)
        self.before, self.after, self.residual = before, after, residual


@dataclass(frozen=True)
class Proof:
    """How a step was verified. ``kind`` is ``"proved"`` (symbolic) or ``"numeric"``."""

    kind: str
    method: str

    def __str__(self):
        if self.kind == "proved":
            return f"proved symbolically ({self.method})"
        return self.method


# ---------------------------------------------------------------- sums -----------------------

def _linearize_sum(s: sp.Sum) -> sp.Expr:
    """Sum(a*f(i) + g(i) + c) -> a*Sum(f(i)) + Sum(g(i)) + c*(number of terms). Exact for finite sums."""
    if len(s.limits) != 1:
        return s
    (i, lo, hi) = s.limits[0]
    summand = sp.expand(sp.expand_log(sp.expand(s.function)))
    out = sp.Integer(0)
    for term in sp.Add.make_args(summand):
        coeff, dep = term.as_independent(i, as_Add=False)
        out += coeff * (hi - lo + 1 if dep == 1 else sp.Sum(dep, (i, lo, hi)))
    return out


def _linearize(expr):
    """Apply :func:`_linearize_sum` to every Sum, innermost first, then expand."""
    expr = expr.replace(lambda e: isinstance(e, sp.Sum), _linearize_sum)
    return sp.expand(expr)


def _apply_given(expr, given):
    """Substitute the given facts. A fact with a free index (``pi2[y]: pi[y]*c``) holds for every y,
    so it is also applied inside sums over y (``subs`` alone skips bound variables)."""
    if not given:
        return expr
    expr = _linearize(expr)
    for old, new in given.items():
        old_lin = _linearize(old) if isinstance(old, sp.Expr) else old
        expr = expr.subs(old_lin, new).subs(old, new)
        expr = expr.replace(lambda e: isinstance(e, sp.Sum),
                            lambda s, o=old, n=new: sp.Sum(s.function.subs(o, n), *s.limits))
    return expr


# ------------------------------------------------------------ is zero ------------------------

# Each strategy is a sound rewrite: it returns an expression equal to its input for every value
# allowed by the symbols' assumptions.
_STRATEGIES = (
    ("expand", sp.expand),
    ("expand_log", lambda e: sp.expand(sp.expand_log(e))),
    ("simplify", sp.simplify),
    ("expand_log + simplify", lambda e: sp.simplify(sp.expand_log(sp.expand(e)))),
    ("linearity of sums", _linearize),
    ("linearity of sums + simplify", lambda e: sp.simplify(_linearize(e))),
    ("logcombine + simplify", lambda e: sp.simplify(sp.logcombine(e))),
    ("exp/log rewrite + simplify", lambda e: sp.simplify(sp.expand_log(sp.powsimp(sp.expand(e))))),
    ("evaluate derivatives + simplify", lambda e: sp.simplify(sp.expand_log(sp.expand(e.doit())))),
)


STRATEGY_SECONDS = 20  # a rewrite that runs longer is abandoned (counts as "not proved")


class _TimeUp(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds):
    """Abandon a SymPy rewrite after ``seconds`` (SIGALRM, main thread only; elsewhere no limit)."""
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise _TimeUp

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def is_zero(expr, seconds: float = None) -> str | None:
    """Return the name of the rewrite that reduces ``expr`` to exactly 0, or None.

    Each rewrite gets ``seconds`` (default :data:`STRATEGY_SECONDS`); one that runs out proves nothing.
    """
    expr = sp.sympify(expr)
    if expr == 0:
        return "identical"
    for name, rewrite in _STRATEGIES:
        try:
            with _time_limit(seconds or STRATEGY_SECONDS):
                if rewrite(expr) == 0:
                    return name
        except (TypeError, ValueError, NotImplementedError, RecursionError, _TimeUp):
            continue
    return None


def _residual_text(expr):
    try:
        return sp.sstr(sp.simplify(_linearize(expr)))
    except Exception:  # pragma: no cover - display only
        return sp.sstr(expr)


def _is_target(t):
    from sympy.core.function import AppliedUndef

    return isinstance(t, (sp.Symbol, sp.Indexed, AppliedUndef))


# ------------------------------------------------------------ checking -----------------------

def _check_expressions(before, after, given):
    residual = _apply_given(sp.sympify(before) - sp.sympify(after), given)
    how = is_zero(residual)
    if how is None:
        raise StepError(
            f"could not prove  {sp.sstr(before)}  =  {sp.sstr(after)}; "
            f"residual before - after = {_residual_text(residual)}",
            before, after, residual)
    if given:
        how = "substituting the given facts" + ("" if how == "identical" else f", then {how}")
    return Proof("proved", how)


def _solutions(eq, t):
    try:
        return sp.solve(eq, t, dict=False)
    except (NotImplementedError, TypeError, ValueError):
        return None


def _implies(before: sp.Eq, after: sp.Eq, given):
    """Prove ``before => after`` where ``after`` reads ``t = e`` for a symbol or function value t."""
    t, e = after.lhs, after.rhs
    if not _is_target(t):
        return None
    sols = _solutions(sp.Eq(_apply_given(before.lhs, given), _apply_given(before.rhs, given)), t)
    if not sols or len(sols) != 1:
        return None
    how = is_zero(_apply_given(sols[0] - e, given))
    return f"solved for ${sp.latex(t)}$, {how}" if how else None


def _substituted(solution: sp.Eq, residual, given):
    """Prove ``solution => (residual = 0)`` when ``solution`` reads ``t = e``: substitute and reduce."""
    for t, e in ((solution.lhs, solution.rhs), (solution.rhs, solution.lhs)):
        if _is_target(t):
            how = is_zero(_apply_given(residual.subs(t, e), given))
            if how:
                return f"substituted ${sp.latex(t)} = {sp.latex(e)}$ back, {how}"
    return None


def _check_equations(before, after, given, implies_only):
    a = _apply_given(before.lhs - before.rhs, given)
    b = _apply_given(after.lhs - after.rhs, given)
    how = is_zero(a - b) or is_zero(a + b)
    if how:
        return Proof("proved", f"same equation, {how}")
    ratio = sp.simplify(_linearize(a) / _linearize(b)) if b != 0 else None
    if ratio is not None and ratio.free_symbols and (ratio.is_positive or ratio.is_negative):
        return Proof("proved", "sides scaled by a factor of known sign")
    if ratio is not None and ratio.is_number and ratio != 0 and ratio.is_finite:
        return Proof("proved", f"sides scaled by {sp.sstr(ratio)}")
    fwd = _implies(before, after, given)
    if fwd is None and _is_target(after.rhs):
        fwd = _implies(before, sp.Eq(after.rhs, after.lhs), given)
    if fwd and implies_only:
        return Proof("proved", f"implication: {fwd}")
    back = _implies(after, before, given)
    if back is None and _is_target(before.rhs):
        back = _implies(after, sp.Eq(before.rhs, before.lhs), given)
    if back is None:
        back = _substituted(after, a, given)
    if fwd and back:
        return Proof("proved", f"equivalence both ways: {fwd}; {back}")
    raise StepError(
        f"could not prove  {sp.sstr(before)}  <=>  {sp.sstr(after)}; "
        f"residual (lhs - rhs) difference = {_residual_text(a - b)}",
        before, after, a - b)


def check_step(before, after, *, given=None, implies=False) -> Proof:
    r"""Prove that ``after`` follows from ``before`` and return how, or raise :class:`StepError`.

    - Two expressions: proves ``before - after == 0`` (after applying ``given``).
    - Two equations (``sp.Eq``): proves they are equivalent (``implies=True``: only that ``after``
      follows from ``before``): same equation up to a nonzero factor, or ``after`` reads ``t = e``
      and solving ``before`` for ``t`` gives exactly ``e`` (and substituting back proves the converse).
    ``given`` maps expressions to values the step may use (a definition, a normalization).
    """
    if isinstance(before, sp.Equality) != isinstance(after, sp.Equality):
        raise TypeError("check_step: before and after must both be expressions or both be sp.Eq, "
                        f"got {type(before).__name__} and {type(after).__name__}")
    if isinstance(before, sp.Equality):
        return _check_equations(before, after, given, implies)
    if implies:
        raise TypeError("check_step: implies=True only applies to equations (sp.Eq)")
    return _check_expressions(before, after, given)


# ------------------------------------------------------------ numeric ------------------------

def _random_value(sym, rng):
    if sym.is_positive:
        return sp.Float(rng.uniform(0.1, 3.0), 15)
    return sp.Float(rng.uniform(-3.0, 3.0), 15)


def _numeric_instance(expr, values, rng, n_terms):
    from sympy.core.function import AppliedUndef

    expr = expr.subs({s: n_terms for s in expr.free_symbols if s.is_integer and s.is_positive
                      and not isinstance(s, sp.Dummy) and s in values.get("__bounds__", set())})
    expr = expr.doit()
    atoms = sorted(expr.atoms(sp.Indexed, AppliedUndef) | expr.free_symbols, key=sp.default_sort_key)
    subs = {}
    for a in atoms:
        if a not in values:
            values[a] = _random_value(a, rng)
        subs[a] = values[a]
    return expr.subs(subs)


def check_numeric(before, after, *, points=20, seed=0, tol=1e-9, given=None, n_terms=3) -> Proof:
    """Evaluate ``before - after`` at ``points`` random points (positive symbols in (0.1, 3)).

    Evidence, not proof: the returned :class:`Proof` has ``kind="numeric"`` and says so. Symbolic
    upper limits of sums are set to ``n_terms``. Raises :class:`StepError` on any mismatch.
    """
    rng = random.Random(seed)
    if isinstance(before, sp.Equality):
        before, after = before.lhs - before.rhs, after.lhs - after.rhs
    diff = _apply_given(sp.sympify(before) - sp.sympify(after), given)
    bounds = {lim[2] for s in diff.atoms(sp.Sum) for lim in s.limits if isinstance(lim[2], sp.Symbol)}
    worst = 0.0
    for _ in range(points):
        val = complex(sp.N(_numeric_instance(diff, {"__bounds__": bounds}, rng, n_terms)))
        worst = max(worst, abs(val))
        if not abs(val) <= tol:
            raise StepError(f"numeric check failed: before - after = {val.real:.6g} at a random point",
                            before, after, diff)
    return Proof("numeric", f"checked numerically at {points} random points (max |difference| {worst:.1e})")


# ------------------------------------------------------------ derivation ---------------------

@dataclass
class _Step:
    expr: object
    why: str
    proof: Proof
    given: dict | None


@dataclass
class Derivation:
    r"""A chain of checked steps that renders as LaTeX in a notebook.

    >>> b = sp.Symbol("beta", positive=True); x = sp.Symbol("x")
    >>> d = Derivation("toy", -b * (x - 1)).step(b - b * x, "expand")
    >>> d.proofs()[0].kind
    'proved'
    """

    title: str
    start: object
    steps: list = field(default_factory=list)

    def step(self, after, why, *, given=None, implies=False, numeric=False, **numeric_kw):
        """Check ``after`` against the last expression; raise StepError if it does not follow.

        ``numeric=True`` records a numeric spot-check instead of a proof (labelled as such).
        """
        before = self.steps[-1].expr if self.steps else self.start
        if numeric:
            proof = check_numeric(before, after, given=given, **numeric_kw)
        else:
            try:
                proof = check_step(before, after, given=given, implies=implies)
            except StepError as err:
                raise StepError(f"[{self.title}] step {len(self.steps) + 1} ({why}): {err}",
                                err.before, err.after, err.residual) from None
        if implies and proof.kind == "proved":
            proof = Proof("proved", proof.method + "; one direction")
        self.steps.append(_Step(after, why, proof, given))
        return self

    @property
    def result(self):
        return self.steps[-1].expr if self.steps else self.start

    def proofs(self):
        return [s.proof for s in self.steps]

    def all_proved(self) -> bool:
        return all(p.kind == "proved" for p in self.proofs())

    # -- display ---------------------------------------------------------------------------
    def _relation(self, s):
        if isinstance(s.expr, sp.Equality):
            return r"\Longrightarrow" if "one direction" in s.proof.method else r"\Longleftrightarrow"
        return "="

    def _repr_markdown_(self):
        lines = [rf"& {sp.latex(self.start)}"]
        for k, s in enumerate(self.steps, 1):
            lines.append(rf"{self._relation(s)} {{}}& {sp.latex(s.expr)} && \text{{({k})}}")
        out = [f"**{self.title}**", "", "$$\\begin{aligned}" + " \\\\\n".join(lines) + "\\end{aligned}$$", ""]
        for k, s in enumerate(self.steps, 1):
            mark = "✔" if s.proof.kind == "proved" else "≈"
            extra = ""
            if s.given:
                extra = "; using " + ", ".join(f"${sp.latex(o)} = {sp.latex(n)}$" for o, n in s.given.items())
            out.append(f"{k}. {s.why}{extra} — {mark} {s.proof}")
        return "\n".join(out)

    def __repr__(self):
        out = [f"Derivation: {self.title}", f"    {sp.sstr(self.start)}"]
        for k, s in enumerate(self.steps, 1):
            rel = "=" if not isinstance(s.expr, sp.Equality) else "<=>"
            out.append(f"{rel:>3} {sp.sstr(s.expr)}    ({k}) {s.why} [{s.proof}]")
        return "\n".join(out)
