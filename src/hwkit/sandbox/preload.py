"""What the grading server imports before it forks any submission: the only module that does work on import.

multiprocessing's forkserver takes a list of modules to import (``set_forkserver_preload``); importing
this one imports the sandbox and torch and runs ``warm_up``, so that every process forked for a
submission or a probe starts with them ready. No other module of the package runs anything at import.
"""

import torch

from hwkit.sandbox import run as sandbox  # noqa: F401  (preloaded: its imports are the expensive part of starting a run)


def warm_up() -> None:
    """Run, once in the server, what the tests' first calls would otherwise import in every probe's process.

    An optimiser's first step imports some 800 modules (torch._dynamo and friends, about 0.8 s);
    without this, each probe that trains would pay for it again.
    """
    model = torch.nn.Linear(2, 2).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.binary_cross_entropy_with_logits(model(x), torch.ones(3, 2, dtype=torch.float64)).backward()
    optimizer.step()
    torch.autograd.gradcheck(lambda a: (a.exp() * 0.5).sum(-1), (x,))
    cov = torch.eye(2, dtype=torch.float64)
    torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), covariance_matrix=torch.linalg.inv(cov)).log_prob(x)
    torch.trapezoid(x[:, 0], x[:, 1])


warm_up()
