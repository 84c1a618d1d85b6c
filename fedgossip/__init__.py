"""fedgossip: federated and decentralized learning over MPI with quantized gossip."""

__version__ = "0.1.0"
__all__ = ["__version__"]
