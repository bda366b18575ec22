"""CPU benchmark of lsm_ext against the bandwidth floor, SciPy and NumPy.

The same table as the README's main job (``python -m lsm_ext.bench``), kept
here beside the other benchmarks. Usage::

    python benchmarks/bench_cpu.py [--quick] [--repeat N]
"""

from lsm_ext.bench import main

if __name__ == "__main__":
    main()
