"""Convert step: pySigma condition trees → IR (sigma_ir) and IR → KQL per dialect (kql)."""
