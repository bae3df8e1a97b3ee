"""The WordPress chat plugins' wire protocols, one module each, behind one seam (`base`)."""
