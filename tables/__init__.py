"""Tables generated from run records.

``records.py`` defines the result-record format that every run writes; ``paper_numbers.yaml`` holds the
numbers the papers report, each with its source and protocol; ``render.py`` turns records and paper numbers
into markdown, CSV and LaTeX tables and regenerates ``RESULTS.md``; ``recorded/<budget>.csv`` holds the
recorded numbers CI compares against. This package imports neither ``methods`` nor ``downstream``: it reads
files only. See README.md in this folder.
"""
