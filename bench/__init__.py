"""The benchmark suite of issue 4: `python -m bench --json bench/results/cpu.json [--quick]`.

Every number is measured through the real engine (Diarizer, featurizer, Weighter, tracker) on
real recorded speech; see README.md beside this file for what each section measures.
"""
