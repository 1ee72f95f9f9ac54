//! Processes inside the jail that are jail's own binary: the Slurm stubs
//! (`sbatch`, `srun`, ...), which speak to the chaperon outside.

pub mod stub;
