"""Public symmetry checks: what eqjax's own tests use, for users' models too."""
