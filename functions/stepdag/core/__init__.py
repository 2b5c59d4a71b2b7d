"""Pure core: DAG model, validation, graph algorithms and the DAG → ASL compiler.

Standard library and pydantic only; nothing here imports boto3 or powertools.
"""
