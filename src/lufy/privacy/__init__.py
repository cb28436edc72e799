"""Privacy: personal data sealed per person (crypto-shredding), erasure and export."""
