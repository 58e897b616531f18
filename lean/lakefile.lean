import Lake
open Lake DSL

/-! Formal error bounds of rhojax. Core Lean 4 only: no Mathlib, Std or Batteries. -/

package rhojax_bounds

@[default_target]
lean_lib RhojaxBounds
