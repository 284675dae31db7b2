//! Pages for the org tree, units and role assignments.

use crate::app::Routes;

pub fn routes(r: Routes) -> Routes {
    r
}
