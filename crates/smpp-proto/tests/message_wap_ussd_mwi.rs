//! WAP push, USSD service ops, message waiting indication.

use smpp_proto::message::concat::ReferenceCounter;
use smpp_proto::message::mwi::{
    MsMsgWaitFacilities, MwiGroup, MwiIndication, MwiKind, SpecialSmsIndication,
};
use smpp_proto::message::wap::{
    push_uintvar, wap_push_port_element, ServiceIndication, ServiceLoading, SiAction, SlAction,
    WapPushError,
};
use smpp_proto::message::{
    DataCoding, InformationElement, SegmentationPolicy, UserDataHeader, UssdServiceOp,
};

fn hex(b: &[u8]) -> String {
    hex::encode_upper(b)
}

#[test]
fn wap_port_udh_bytes() {
    let udh = UserDataHeader::new(vec![wap_push_port_element()]);
    assert_eq!(hex(&udh.encode().unwrap()), "0605040B8423F0");
}

#[test]
fn service_indication_minimal() {
    let si = ServiceIndication {
        href: "http://www.example.com/a".into(),
        text: "Hello".into(),
        ..ServiceIndication::default()
    };
    let mut expected = vec![0x01, 0x06, 0x01, 0xAE]; // TID, Push, headers len, SIC
    expected.extend_from_slice(&[0x02, 0x05, 0x6A, 0x00, 0x45, 0xC6, 0x0D, 0x03]);
    expected.extend_from_slice(b"example.com/a\0");
    expected.extend_from_slice(&[0x01, 0x03]);
    expected.extend_from_slice(b"Hello\0");
    expected.extend_from_slice(&[0x01, 0x01]);
    assert_eq!(hex(&si.to_wsp_push(0x01).unwrap()), hex(&expected));
}

#[test]
fn service_indication_all_attributes() {
    let si = ServiceIndication {
        href: "https://x.org".into(),
        text: String::new(),
        si_id: Some("id1".into()),
        created: Some("2002-04-03T10:30:00Z".into()),
        expires: Some("2002-04-10T00:00:00Z".into()),
        action: Some(SiAction::SignalHigh),
    };
    let w = si.to_wbxml().unwrap();
    let mut expected = vec![0x02, 0x05, 0x6A, 0x00, 0x45, 0xC6, 0x08, 0x0E, 0x03];
    expected.extend_from_slice(b"x.org\0");
    expected.extend_from_slice(&[0x11, 0x03]);
    expected.extend_from_slice(b"id1\0");
    // created: 20 02 04 03 10 30 (trailing 00 dropped); expires: 20 02 04 10.
    expected.extend_from_slice(&[0x0A, 0xC3, 0x06, 0x20, 0x02, 0x04, 0x03, 0x10, 0x30]);
    expected.extend_from_slice(&[0x10, 0xC3, 0x04, 0x20, 0x02, 0x04, 0x10]);
    expected.extend_from_slice(&[0x01, 0x01, 0x01]);
    assert_eq!(hex(&w), hex(&expected));
    let bad = ServiceIndication {
        created: Some("yesterday".into()),
        ..si
    };
    assert!(matches!(bad.to_wbxml(), Err(WapPushError::BadDate(_))));
}

#[test]
fn service_loading() {
    let sl = ServiceLoading {
        href: "http://a.b/c".into(),
        action: Some(SlAction::ExecuteHigh),
    };
    let mut expected = vec![
        0x05, 0x06, 0x01, 0xB0, 0x02, 0x06, 0x6A, 0x00, 0x85, 0x06, 0x09, 0x03,
    ];
    expected.extend_from_slice(b"a.b/c\0");
    expected.push(0x01);
    assert_eq!(hex(&sl.to_wsp_push(5).unwrap()), hex(&expected));
    let plain = ServiceLoading {
        href: "ftp://z".into(),
        action: None,
    };
    let w = plain.to_wbxml().unwrap();
    assert_eq!(&w[4..7], &[0x85, 0x08, 0x03]);
}

#[test]
fn push_segments_carry_ports_and_concat() {
    let si = ServiceIndication {
        href: format!("http://www.example.com/{}", "p".repeat(150)),
        text: "Long push".into(),
        ..ServiceIndication::default()
    };
    let mut refs = ReferenceCounter::new(0x21);
    let segs = si
        .to_segments(1, &SegmentationPolicy::default(), &mut refs)
        .unwrap();
    assert_eq!(segs.len(), 2);
    let mut joined = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(s.data_coding, DataCoding::BINARY);
        assert!(s.air_octets() <= 140);
        let udh = s.udh.as_ref().unwrap();
        assert_eq!(hex(udh), format!("0B05040B8423F000032102{:02X}", i + 1));
        joined.extend_from_slice(&s.payload);
    }
    assert_eq!(joined, si.to_wsp_push(1).unwrap());
}

#[test]
fn uintvar() {
    let enc = |v| {
        let mut o = Vec::new();
        push_uintvar(&mut o, v);
        hex(&o)
    };
    assert_eq!(enc(0), "00");
    assert_eq!(enc(0x7F), "7F");
    assert_eq!(enc(0x80), "8100");
    assert_eq!(enc(0x3FFF), "FF7F");
    assert_eq!(enc(u32::MAX), "8FFFFFFF7F");
}

#[test]
fn ussd_service_ops() {
    let named = [
        (0, UssdServiceOp::PssdIndication),
        (1, UssdServiceOp::PssrIndication),
        (2, UssdServiceOp::UssrRequest),
        (3, UssdServiceOp::UssnRequest),
        (16, UssdServiceOp::PssdResponse),
        (17, UssdServiceOp::PssrResponse),
        (18, UssdServiceOp::UssrConfirm),
        (19, UssdServiceOp::UssnConfirm),
    ];
    for (v, op) in named {
        assert_eq!(UssdServiceOp::from_u8(v), op);
        assert_eq!(op.to_u8(), v);
    }
    assert_eq!(UssdServiceOp::from_u8(4), UssdServiceOp::Reserved(4));
    assert_eq!(UssdServiceOp::from_u8(31), UssdServiceOp::Reserved(31));
    assert_eq!(UssdServiceOp::from_u8(32), UssdServiceOp::Vendor(32));
    for v in 0..=255u8 {
        assert_eq!(u8::from(UssdServiceOp::from(v)), v);
    }
    assert!(UssdServiceOp::UssrRequest.is_request());
    assert!(!UssdServiceOp::UssrConfirm.is_request());
}

#[test]
fn mwi_builders() {
    let vm_on = MwiIndication {
        group: MwiGroup::StoreGsm7,
        active: true,
        kind: MwiKind::Voicemail,
    };
    assert_eq!(vm_on.to_data_coding(), 0xD8);
    let fax_off_discard = MwiIndication {
        group: MwiGroup::Discard,
        active: false,
        kind: MwiKind::Fax,
    };
    assert_eq!(fax_off_discard.to_data_coding(), 0xC1);
    assert_eq!(MwiIndication::from_data_coding(0xC1), Some(fax_off_discard));
    assert_eq!(DataCoding(0xD8).mwi(), Some(vm_on));

    let f = MsMsgWaitFacilities {
        active: true,
        kind: MwiKind::Email,
    };
    assert_eq!(f.to_byte(), 0x82);
    assert_eq!(MsMsgWaitFacilities::from_byte(0x82), f);
    assert_eq!(MsMsgWaitFacilities::from_byte(0x03).kind, MwiKind::Other);
    assert!(!MsMsgWaitFacilities::from_byte(0x03).active);

    let ind = SpecialSmsIndication {
        store: true,
        kind: MwiKind::Voicemail,
        profile: 1,
        extended_type: 0,
        count: 3,
    };
    assert_eq!(ind.indication_octet(), 0x84);
    let ie = ind.to_information_element();
    assert_eq!(
        ie,
        InformationElement::SpecialSmsIndication {
            indication: 0x84,
            count: 3
        }
    );
    assert_eq!(SpecialSmsIndication::from_octets(0x84, 3), ind);
    let udh = UserDataHeader::new(vec![ie]);
    assert_eq!(hex(&udh.encode().unwrap()), "0401028403");
}
