"""Command line of bitexact.torch.find_nondeterminism (see bitexact/torch/_nondeterminism.py):

    python3 -m bitexact.torch.find_nondeterminism --model pkg.module:factory [--threads 1,2,3]
    python3 -m bitexact.torch.find_nondeterminism --demo
"""
import sys

from bitexact.torch._nondeterminism import main

if __name__ == "__main__":
    sys.exit(main())
