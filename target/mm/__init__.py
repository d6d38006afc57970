"""The model of mm/ after Swapless V2: one module per kernel file it mirrors.

Importing the package declares the mm/rmap.c lock order to lockdep (target.mm.locking).
"""

from . import locking as locking
