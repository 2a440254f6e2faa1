"""Champion-challenger: the pure promotion policy and the registry moves around it."""
