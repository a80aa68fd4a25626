//! The `countries` table: the shipped reference list of countries and their groups.

use diesel::prelude::*;

use super::schema::countries;
use super::DbConn;
use crate::reference::Countries;

/// Bring the countries table in line with the shipped list (update or insert each row).
pub fn sync_countries(conn: &mut DbConn, list: &Countries) -> QueryResult<usize> {
    super::transaction(conn, |conn| {
        // Two servers starting together on a new database would both insert every country.
        crate::db::lock_for_startup(conn)?;
        let mut inserted = 0;
        for c in list.iter() {
            let values = (
                countries::iso2.eq(&c.iso2),
                countries::m49.eq(&c.m49),
                countries::name_en.eq(&c.name_en),
                countries::name_fr.eq(&c.name_fr),
                countries::name_es.eq(&c.name_es),
                countries::region_code.eq(&c.region_code),
                countries::subregion_code.eq(&c.subregion_code),
                countries::intermediate_code.eq(&c.intermediate_code),
                countries::development.eq(&c.development),
                countries::ldc.eq(c.ldc == 1),
                countries::ldc_2008.eq(c.ldc_2008 == 1),
                countries::lldc.eq(c.lldc == 1),
                countries::sids.eq(c.sids == 1),
                countries::income_fy09.eq(&c.income_fy09),
                countries::income_fy23.eq(&c.income_fy23),
            );
            let updated = diesel::update(countries::table.find(&c.iso3))
                .set(values)
                .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(countries::table)
                    .values((countries::iso3.eq(&c.iso3), values))
                    .execute(conn)?;
                inserted += 1;
            }
        }
        Ok(inserted)
    })
}
