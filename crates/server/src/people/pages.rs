//! Pages for people, personnel events, CSV import and account administration.

use crate::app::Routes;

pub fn routes(r: Routes) -> Routes {
    r
}
