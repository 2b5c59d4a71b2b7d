"""Example workflows. Each module defines a ``Workflow``; its compiled ASL sits beside it."""
