"""fabscope-analyze: reads fabscope result files (results/SCHEMA.md) and turns them into reports."""

__version__ = "0.1.0"
