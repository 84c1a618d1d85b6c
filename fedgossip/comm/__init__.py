"""The MPI layer: point-to-point packet exchange, and byte/time accounting of everything sent."""
