"""Formal proofs of emitted N:M Verilog (``nmsparse prove``), from the Verilog and sidecar only.

::

    hdl/<module>.v + .json
        │
        ├─ stream.py    SymbiYosys (smtbmc z3): bmc + k-induction of the valid/ready contract
        │               on the netlist with its datapath cut away (netlist.py)
        ├─ equiv.py     direct SAT equivalence with a reference of the rule (reference.py):
        │               pipeline stripped after a register-balance check, CNF, CaDiCaL (aig.py)
        ├─ delaylines.py  distributed-RAM delay lines rewritten into register chains, the
        │               rewrite proven sound by SAT on one transition (for equiv and compose)
        ├─ compose.py   8:16 and 16:32: one decomposition per architecture (rank, network,
        │               radix, flexible rank), each step a small SAT problem or an exhaustive
        │               0-1 check, cut points found in the netlist
        └─ mutants.py   broken copies of the Verilog that every proof must reject

It lives under :mod:`verif` because it verifies any Verilog that follows DESIGN.md, exactly as
the testbenches do: it never imports :mod:`gen` (the generator's own data is not evidence) and
reuses :func:`verif.tb.decode` to print counterexamples field by field. Trade-off: direct
equivalence is the strongest statement but only scales to M = 8; the compositional proofs
scale to 16:32 at the price of one small decomposition class per architecture.
"""
