"""Query planning, fusion and execution (plan.py and fusion.py are pure)."""
